-- Daily applications per series for the look-back window: one count per distinct non-blank
-- application_id, per folded series name, per day in the source time zone, and the series'
-- bucket (pipeline_code.shards.bucket_of: the first byte of MD5 of the name's UTF-8 bytes,
-- masked to the bucket count). Athena UNLOADs it partitioned by bucket; locally DuckDB COPYs
-- it the same way, so that each PreProc instance reads only its buckets.
-- Dialect: Athena (Trino); locally sqlglot transpiles it to DuckDB.
-- Placeholders: those of source_rows.sql, and {{bucket_mask}} (BUCKETS - 1).
WITH {{source_rows}}

SELECT
    series_id,
    ds,
    CAST(count(DISTINCT application_id) AS DOUBLE) AS y,
    bitwise_and(from_base(substr(to_hex(md5(to_utf8(series_id))), 1, 2), 16), {{bucket_mask}})
        AS bucket
FROM countable
GROUP BY series_id, ds
