-- Difficulty curves along each task's 1-D projections: one row per model, task, projection and value on its axis.
-- axis_value is the value as text; axis_numeric the number (null on a categorical axis); axis_rank the position
-- along the axis: numeric order (7 < 30 < 365), else the order the manifold lists the values in.
WITH projection_axes AS (
    SELECT task, manifold_yaml, unnest(from_json(projections_json, '[{"name": "VARCHAR", "axis": "VARCHAR"}]'), recursive := true)
    FROM {{ ref('task_specs') }}
),
along AS (
    SELECT
        p.model,
        p.task,
        s.name AS projection,
        s.axis,
        json_extract_string(p.params_json, '$.' || s.axis) AS axis_value,
        CASE WHEN json_type(p.params_json, '$.' || s.axis) IN ('UBIGINT', 'BIGINT', 'HUGEINT', 'DOUBLE')
             THEN json_extract_string(p.params_json, '$.' || s.axis)::DOUBLE END AS axis_numeric,
        manifold_position(s.manifold_yaml, 'projections', s.name, s.axis, json_extract(p.params_json, '$.' || s.axis)::VARCHAR) AS listed,
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
    JOIN projection_axes s ON p.task = s.task AND list_contains(p.projections, s.name)
)
SELECT
    model, task, projection, axis, axis_value, axis_numeric,
    dense_rank() OVER (PARTITION BY task, projection ORDER BY axis_numeric NULLS LAST, listed NULLS LAST, axis_value) AS axis_rank,
    point_id, n, answered, correct, accuracy, ci_low, ci_high, flexible_accuracy, format_compliance,
    excess_accuracy, truncation_rate, mean_completion_tokens, guess_chance, errors
FROM along
ORDER BY model, task, projection, axis_rank
