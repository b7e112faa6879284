-- Each series' latest published forecasts next to its daily actuals (Athena engine v3 / Trino).
-- Table names are unqualified: the view lives in the same Glue database as the tables.
-- The total across series is a row set of its own, series_id '__total__' with series_kind
-- 'total' (its forecast the sum of the series', its actuals every car model's count): a sum
-- over series filters on series_kind = 'series', or it counts every day twice.
-- yhat_1d_ahead, yhat_7d_ahead and yhat_28d_ahead put beside each day what the publications of
-- 1, 7 and 28 days before it forecast for it, so forecast against actual can be charted over
-- time (null where that publication did not reach the day or was never made).
WITH ranked_forecasts AS (
    SELECT
        series_id,
        target_date,
        yhat,
        yhat_lower,
        yhat_upper,
        model,
        execution_date,
        -- Per series rather than per table: a series missing from the newest run keeps
        -- showing the forecast it last received instead of disappearing.
        dense_rank() OVER (PARTITION BY series_id ORDER BY execution_date DESC) AS recency
    FROM forecasts
),
latest_forecasts AS (
    SELECT series_id, target_date, yhat, yhat_lower, yhat_upper, model, execution_date
    FROM ranked_forecasts
    WHERE recency = 1
),
ahead AS (
    SELECT
        series_id,
        target_date,
        max(CASE WHEN date_diff('day', CAST(execution_date AS date), target_date) = 1
            THEN yhat END) AS yhat_1d_ahead,
        max(CASE WHEN date_diff('day', CAST(execution_date AS date), target_date) = 7
            THEN yhat END) AS yhat_7d_ahead,
        max(CASE WHEN date_diff('day', CAST(execution_date AS date), target_date) = 28
            THEN yhat END) AS yhat_28d_ahead
    FROM forecasts
    -- The same history window as the actuals; the bound prunes the publications' dates.
    WHERE execution_date >= CAST(current_date - INTERVAL '430' DAY AS varchar)
    GROUP BY series_id, target_date
),
actuals AS (
    SELECT
        car_model AS series_id,
        CAST(applied_at AS date) AS ds,
        count(*) AS y
    FROM applications
    -- Thirteen months of history, enough for a year-over-year look; the bound prunes `dt`
    -- partitions so the daily refresh does not scan the whole source.
    WHERE dt >= CAST(current_date - INTERVAL '400' DAY AS varchar)
    GROUP BY car_model, CAST(applied_at AS date)
),
actuals_and_total AS (
    SELECT series_id, ds, y FROM actuals
    UNION ALL
    SELECT '__total__' AS series_id, ds, sum(y) AS y FROM actuals GROUP BY ds
)
SELECT
    coalesce(f.series_id, a.series_id) AS series_id,
    coalesce(f.target_date, a.ds) AS ds,
    a.y AS y,
    f.yhat AS yhat,
    f.yhat_lower AS yhat_lower,
    f.yhat_upper AS yhat_upper,
    f.model AS model,
    f.execution_date AS forecast_execution_date,
    CASE
        WHEN coalesce(f.series_id, a.series_id) = '__total__' THEN 'total'
        ELSE 'series'
    END AS series_kind,
    h.yhat_1d_ahead AS yhat_1d_ahead,
    h.yhat_7d_ahead AS yhat_7d_ahead,
    h.yhat_28d_ahead AS yhat_28d_ahead
FROM latest_forecasts AS f
FULL OUTER JOIN actuals_and_total AS a
    ON f.series_id = a.series_id AND f.target_date = a.ds
LEFT JOIN ahead AS h
    ON h.series_id = coalesce(f.series_id, a.series_id)
    AND h.target_date = coalesce(f.target_date, a.ds)
