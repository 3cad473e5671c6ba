-- Per model, task and tier: pooled accuracy with its Wilson 95% CI (strict: only answers in the requested
-- form count; the headline), the flexible accuracy (any rule of the parse cascade) with its CI, the share of
-- answers in the requested form, excess accuracy over chance, truncation (rate over all samples; ratio over
-- answered + truncated, errors left out) and tokens; the strict answers neither correct nor incorrect, unparsed (no
-- answer in the requested form) and ambiguous (a hedge between candidates), with ambiguous' share of the answers;
-- tier_points says how many of the tier's points the row pools (a tier evaluated in part is pooled over the points measured).
-- `points` holds the current task, model and scoring versions only, so the leaderboard does too.
WITH tier_sizes AS (
    SELECT task, name AS tier, points AS tier_points
    FROM (SELECT task, unnest(from_json(tiers_json, '[{"name": "VARCHAR", "points": "INTEGER"}]'), recursive := true) FROM {{ ref('task_specs') }})
),
per_tier AS (
    SELECT model, task, unnest(tiers) AS tier, n, answered, correct, incorrect, unparsed, ambiguous, flexible_correct, truncated, errors,
           guess_chance, mean_completion_tokens
    FROM {{ ref('points') }}
),
pooled AS (
    SELECT
        model,
        task,
        tier,
        count(*) AS points,
        sum(n)::BIGINT AS samples,
        sum(answered)::BIGINT AS answered,
        sum(correct)::BIGINT AS correct,
        sum(unparsed)::BIGINT AS unparsed,
        sum(ambiguous)::BIGINT AS ambiguous,
        sum(ambiguous) / nullif(sum(answered), 0) AS ambiguous_share,
        accuracy(sum(correct), sum(answered)) AS accuracy,
        wilson_low(sum(correct), sum(answered)) AS ci_low,
        wilson_high(sum(correct), sum(answered)) AS ci_high,
        accuracy(sum(flexible_correct), sum(answered)) AS flexible_accuracy,
        wilson_low(sum(flexible_correct), sum(answered)) AS flexible_ci_low,
        wilson_high(sum(flexible_correct), sum(answered)) AS flexible_ci_high,
        (sum(correct) + sum(incorrect)) / nullif(sum(answered), 0) AS format_compliance,
        sum(guess_chance * n) / sum(n) AS guess_chance,
        sum(truncated) / sum(n) AS truncation_rate,
        truncation_ratio(sum(truncated), sum(answered)) AS truncation_ratio,
        sum(errors)::BIGINT AS errors,
        sum(mean_completion_tokens * n) / sum(n) AS mean_completion_tokens
    FROM per_tier
    GROUP BY model, task, tier
)
SELECT pooled.*, tier_sizes.tier_points, excess_over_chance(accuracy, guess_chance) AS excess_accuracy
FROM pooled LEFT JOIN tier_sizes USING (task, tier)
ORDER BY tier, task, accuracy DESC NULLS LAST, model
