-- Accuracy over each task's 2-D difficulty surfaces: one row per model, task, surface and (x, y) cell.
WITH surface_axes AS (
    SELECT task, unnest(from_json(surfaces_json, '[{"name": "VARCHAR", "x": "VARCHAR", "y": "VARCHAR"}]'), recursive := true)
    FROM {{ ref('task_specs') }}
)
SELECT
    p.model,
    p.task,
    s.name AS surface,
    s.x AS x_axis,
    s.y AS y_axis,
    json_extract_string(p.params_json, '$.' || s.x) AS x,
    json_extract_string(p.params_json, '$.' || s.y) AS y,
    p.point_id,
    p.n,
    p.answered,
    p.correct,
    p.accuracy,
    p.ci_low,
    p.ci_high,
    p.excess_accuracy,
    p.truncation_rate,
    p.mean_completion_tokens
FROM {{ ref('points') }} p
JOIN surface_axes s ON p.task = s.task AND list_contains(p.surfaces, s.name)
ORDER BY p.model, p.task, surface, x_axis, y_axis
