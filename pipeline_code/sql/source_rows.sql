-- The source rows of the look-back window as the count sees them: included by extract.sql and
-- extract_quality.sql after their WITH, so both read the rows the same way.
-- Placeholders, filled by pipeline_code.steps.extract after validation:
--   {{database}}, {{table}}  identifiers ([A-Za-z_][A-Za-z0-9_]*)
--   {{start_date}}, {{end_date}}  dates YYYY-MM-DD, both inclusive
--   {{scan_from}}, {{scan_until}}  timestamps a day either side of the window: applied_at
--       outside them is outside the window in any time zone, and gets no zone arithmetic
--       (9999-12-31 23:00 plus nine hours is no timestamp)
--   {{timezone}}  the source time zone (an IANA name, checked by zoneinfo)
--   {{aware_days}}, {{aware_files}}  quoted lists: partitions whose every file, and files
--       of mixed partitions, store applied_at as an instant (Parquet isAdjustedToUTC); both
--       engines read those as UTC wall clock, the others are local time already
--   {{variants}}  VALUES rows (hex of the UTF-8 spelling, series name): the spellings that fold
--       into another name ('' for a blank one); every other spelling is its own series
source AS (
    SELECT
        CAST(application_id AS VARCHAR) AS application_id,
        car_model AS raw_name,
        CAST(applied_at AS TIMESTAMP) AS applied_at,
        "$path" AS source_file,
        dt
    FROM {{database}}.{{table}}
    -- dt is the string partition key: this range prunes partitions outside the window.
    WHERE dt BETWEEN '{{start_date}}' AND '{{end_date}}'
),

variants AS (
    SELECT from_utf8(from_hex(raw_hex)) AS raw_name, series_id
    FROM (VALUES {{variants}}) AS listed (raw_hex, series_id)
),

located AS (
    SELECT
        s.application_id,
        s.applied_at,
        s.source_file,
        s.dt,
        COALESCE(v.series_id, s.raw_name) AS series_id,
        CASE
            WHEN s.applied_at IS NULL
                OR s.applied_at < CAST('{{scan_from}}' AS TIMESTAMP)
                OR s.applied_at >= CAST('{{scan_until}}' AS TIMESTAMP) THEN NULL
            WHEN s.dt IN ({{aware_days}}) OR s.source_file IN ({{aware_files}})
                THEN date(at_timezone(with_timezone(s.applied_at, 'UTC'), '{{timezone}}'))
            ELSE date(s.applied_at)
        END AS ds
    FROM source AS s
    LEFT JOIN variants AS v ON s.raw_name = v.raw_name
),

-- A row is counted when it has an application id (not only whitespace), a series name and a
-- day in the window.
countable AS (
    SELECT *
    FROM located
    WHERE regexp_like(application_id, '\S')
        AND series_id <> ''
        AND ds BETWEEN DATE '{{start_date}}' AND DATE '{{end_date}}'
)
