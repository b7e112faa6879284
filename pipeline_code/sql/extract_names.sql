-- Every car_model spelling in the look-back window and how many rows carry it: Extract folds
-- the spellings into series names in Python (source_contract.fold_names), over distinct names,
-- never rows. Reads one column, so it scans a small part of the window's bytes.
-- Dialect: Athena (Trino); locally sqlglot transpiles it to DuckDB.
-- Placeholders: {{database}}, {{table}} identifiers; {{start_date}}, {{end_date}} YYYY-MM-DD.
SELECT
    car_model AS raw_name,
    count(*) AS row_count
FROM {{database}}.{{table}}
WHERE dt BETWEEN '{{start_date}}' AND '{{end_date}}'
GROUP BY car_model
