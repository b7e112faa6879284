-- The source rows of the look-back window, one per row read, for Extract to check and count.
-- Dialect: Athena (Trino). Locally the runner transpiles it to DuckDB with sqlglot.
-- Placeholders, filled by pipeline_code.steps.extract after validation:
--   {{database}}, {{table}}  identifiers ([A-Za-z_][A-Za-z0-9_]*)
--   {{start_date}}, {{end_date}}  dates YYYY-MM-DD, both inclusive
-- Output, one row per source row (pipeline_code.source_contract.ROW_COLUMNS):
--   application_id (string), applied_at (timestamp as stored, no time zone applied),
--   series_id (the raw car model), source_file (the file the row came from: "$path").
-- Counting happens in Extract, after the source contract: one count per application_id, names
-- normalised (NFKC, trimmed), applied_at read in the source time zone. Counting here would count
-- a load delivered twice twice and split " Ridge Wagon" from "Ridge Wagon".
SELECT
    CAST(application_id AS VARCHAR) AS application_id,
    CAST(applied_at AS TIMESTAMP) AS applied_at,
    car_model AS series_id,
    "$path" AS source_file
FROM {{database}}.{{table}}
-- dt is the string partition key: this range prunes partitions outside the window. Rows whose
-- applied_at falls outside the window in the source time zone are dropped by Extract.
WHERE dt BETWEEN '{{start_date}}' AND '{{end_date}}'
