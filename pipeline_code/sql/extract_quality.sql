-- What the source contract finds in the rows, as aggregates (a few thousand rows whatever the
-- source's size): per day, per source file and over the window, how many rows were read, how
-- many lack an application id, a series name or a time, how many fall outside the window (and
-- the earliest and latest such time), and how many distinct applications are counted.
-- Dialect: Athena (Trino); locally sqlglot transpiles it to DuckDB.
-- Placeholders: those of source_rows.sql.
WITH {{source_rows}},

flagged AS (
    SELECT
        application_id,
        applied_at,
        source_file,
        ds,
        application_id IS NULL OR NOT regexp_like(application_id, '\S') AS blank_id,
        series_id IS NULL OR series_id = '' AS blank_name,
        applied_at IS NULL AS no_time,
        applied_at IS NOT NULL
            AND (ds IS NULL OR ds NOT BETWEEN DATE '{{start_date}}' AND DATE '{{end_date}}')
            AS outside,
        regexp_like(application_id, '\S') AND series_id <> ''
            AND ds BETWEEN DATE '{{start_date}}' AND DATE '{{end_date}}' AS counted
    FROM located
)

SELECT
    CASE
        WHEN grouping(ds) = 0 THEN 'day'
        WHEN grouping(source_file) = 0 THEN 'file'
        ELSE 'window'
    END AS level,
    ds,
    source_file,
    count(*) AS row_count,
    count_if(blank_id) AS blank_ids,
    count_if(blank_name) AS blank_names,
    count_if(no_time) AS no_times,
    count_if(outside) AS outside,
    min(CASE WHEN outside THEN applied_at END) AS outside_first,
    max(CASE WHEN outside THEN applied_at END) AS outside_last,
    count_if(counted) AS counted_rows,
    count(DISTINCT CASE WHEN counted THEN application_id END) AS applications
FROM flagged
GROUP BY GROUPING SETS ((ds), (source_file), ())
