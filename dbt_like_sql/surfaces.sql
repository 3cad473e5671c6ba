-- Accuracy over each task's 2-D difficulty surfaces: one row per model, task, surface and (x, y) cell.
-- x and y are the values as text; x_numeric/y_numeric the numbers (null on a categorical axis); x_rank/y_rank
-- the position along each axis: numeric order, else the order the manifold lists the values in.
WITH surface_axes AS (
    SELECT task, manifold_yaml, unnest(from_json(surfaces_json, '[{"name": "VARCHAR", "x": "VARCHAR", "y": "VARCHAR"}]'), recursive := true)
    FROM {{ ref('task_specs') }}
),
cells AS (
    SELECT
        p.model,
        p.task,
        s.name AS surface,
        s.x AS x_axis,
        s.y AS y_axis,
        json_extract_string(p.params_json, '$.' || s.x) AS x,
        json_extract_string(p.params_json, '$.' || s.y) AS y,
        CASE WHEN json_type(p.params_json, '$.' || s.x) IN ('UBIGINT', 'BIGINT', 'HUGEINT', 'DOUBLE')
             THEN json_extract_string(p.params_json, '$.' || s.x)::DOUBLE END AS x_numeric,
        CASE WHEN json_type(p.params_json, '$.' || s.y) IN ('UBIGINT', 'BIGINT', 'HUGEINT', 'DOUBLE')
             THEN json_extract_string(p.params_json, '$.' || s.y)::DOUBLE END AS y_numeric,
        manifold_position(s.manifold_yaml, 'surfaces', s.name, s.x, json_extract(p.params_json, '$.' || s.x)::VARCHAR) AS x_listed,
        manifold_position(s.manifold_yaml, 'surfaces', s.name, s.y, json_extract(p.params_json, '$.' || s.y)::VARCHAR) AS y_listed,
        p.point_id,
        p.n,
        p.answered,
        p.correct,
        p.accuracy,
        p.ci_low,
        p.ci_high,
        p.flexible_accuracy,
        p.format_compliance,
        p.excess_accuracy,
        p.truncation_rate,
        p.mean_completion_tokens,
        p.guess_chance,
        p.errors
    FROM {{ ref('points') }} p
    JOIN surface_axes s ON p.task = s.task AND list_contains(p.surfaces, s.name)
)
SELECT
    model, task, surface, x_axis, y_axis, x, y, x_numeric, y_numeric,
    dense_rank() OVER (PARTITION BY task, surface ORDER BY x_numeric NULLS LAST, x_listed NULLS LAST, x) AS x_rank,
    dense_rank() OVER (PARTITION BY task, surface ORDER BY y_numeric NULLS LAST, y_listed NULLS LAST, y) AS y_rank,
    point_id, n, answered, correct, accuracy, ci_low, ci_high, flexible_accuracy, format_compliance,
    excess_accuracy, truncation_rate, mean_completion_tokens, guess_chance, errors
FROM cells
ORDER BY model, task, surface, x_rank, y_rank
