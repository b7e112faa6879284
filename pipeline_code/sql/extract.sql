-- Daily applications per car model for the look-back window ending at the execution date.
-- Dialect: Athena (Trino). Locally the runner transpiles it to DuckDB with sqlglot.
-- Placeholders, filled by pipeline_code.steps.extract after validation:
--   {{database}}, {{table}}  identifiers ([A-Za-z_][A-Za-z0-9_]*)
--   {{start_date}}, {{end_date}}  dates YYYY-MM-DD, both inclusive
-- Output: the between-step series contract: series_id, ds (date), y (double).
-- Days without applications produce no row here; PreProc fills them with zero.
SELECT
    car_model AS series_id,
    CAST(applied_at AS DATE) AS ds,
    CAST(COUNT(*) AS DOUBLE) AS y
FROM {{database}}.{{table}}
-- dt is the string partition key: this range prunes partitions outside the window.
WHERE dt BETWEEN '{{start_date}}' AND '{{end_date}}'
    AND CAST(applied_at AS DATE) BETWEEN DATE '{{start_date}}' AND DATE '{{end_date}}'
    AND car_model IS NOT NULL
GROUP BY car_model, CAST(applied_at AS DATE)
ORDER BY series_id, ds
