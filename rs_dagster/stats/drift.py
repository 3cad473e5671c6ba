"""Drift of a watched model: has tonight's canary moved against earlier nights of the same items?

A watched model answers the same published canary items afresh every night (rs_dagster.watch, table
canary_answers). Each night is compared with (a) `previous`, the latest earlier night, and (b) `baseline`, the
last `baseline_nights` earlier nights (left out while fewer than 2 earlier nights exist: it would repeat (a)),
for the task as a whole (scope `task`) and per grid point (scope = its point_id):

accuracy        exact exchangeability test on the items answered on both sides (exchangeable_test): given
                how often item i was right over its k_i earlier answers and tonight's, s_i of k_i + 1,
                tonight's answer is right with probability s_i / (k_i + 1) when nothing changed, so the number
                of items right tonight has an exact Poisson-binomial null distribution; two-sided p =
                2·min(tail). Against one night (k_i = 1) it is exact McNemar (rs_dagster.stats.paired).
                `now` = tonight's accuracy over the shared items, `before` = the mean of their earlier
                accuracies, `shift` = now − before with a normal 95% interval from the per-item
                differences (paired_shift). Accuracy follows rs_dagster.scoring.outcomes: answered =
                correct, incorrect, unparsed or ambiguous; truncated and error answers are left out.
output_tokens   Mann–Whitney U (two-sided, ties corrected) of tonight's completion tokens against the earlier
latency_s       nights' of the same items (every non-error answer with a token count, truncated included);
                now / before / shift: the medians and their difference (no interval).
server          the reported `model` and `system_fingerprint` values of tonight against the latest earlier
                night that got any answer; an alarm when either set differs (one server row per comparison).

q_value         Benjamini–Hochberg (rs_dagster.stats.paired.benjamini_hochberg) over the night's tests of the
                alarm metrics (accuracy, output_tokens: both comparisons, every scope); latency rows get
                their q from a BH of their own over the night's latency tests. Latency moves with load on
                most nights; inside the alarm family its tiny p-values would loosen BH's thresholds for every
                other test (BH rejects the j-th smallest p at j·alpha/m) and raise the false-alarm rate of
                a stable model several-fold (bench/drift_false_alarms.py measures both).
alarm           (metric in ALARM_METRICS and q < alpha) or the server changed.

Rows with an error (error not null, or outcome `error`) are left out of accuracy, tokens and latency. An
item answered twice on one night counts once (its first row). Nights labelled `eval:<salt>` (`rs eval
--fresh-seeds`, EVAL_NIGHT) are no watched nights and are ignored. No dagster here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl
from polars._typing import PolarsDataType

from rs_dagster.scoring.outcomes import Outcome, is_answered, is_correct
from rs_dagster.stats.intervals import Z95, wilson_interval
from rs_dagster.stats.paired import benjamini_hochberg

ALARM_METRICS = ("accuracy", "output_tokens")
"""The metrics that raise an alarm. Latency (latency_s) is reported but never alarms: it moves with the load
of the serving machine, the queue and the network, which change from night to night without the model
changing, so a latency alarm would mostly report traffic; a changed model shows in accuracy, in output tokens
or in the reported server."""
DEFAULT_ALPHA = 0.01
DEFAULT_BASELINE_NIGHTS = 7
PUBLISHED = "published"
"""The item_set of the task's own items (from its published seed); fresh sets are `fresh:<salt>:<k>` (rs_dagster.watch)."""
FRESH_PREFIX = "fresh:"
EVAL_NIGHT = "eval:"
"""A night label beginning so (`eval:<salt>`) is `rs eval --fresh-seeds`: unsalted requests, no watched night."""
METRICS = ("accuracy", "output_tokens", "latency_s")
_SERVER_FIELDS = (("response_model", "model"), ("system_fingerprint", "system_fingerprint"))

DRIFT_COLUMNS: dict[str, PolarsDataType] = {
    "night": pl.String,
    "comparison": pl.String,
    "compared_to": pl.String,
    "scope": pl.String,
    "metric": pl.String,
    "n_shared": pl.Int64,
    "now": pl.Float64,
    "before": pl.Float64,
    "shift": pl.Float64,
    "shift_low": pl.Float64,
    "shift_high": pl.Float64,
    "p_value": pl.Float64,
    "q_value": pl.Float64,
    "alarm": pl.Boolean,
    "detail": pl.String,
}
"""rs_dagster.storage.schemas.Drift less model, task and dagster_run_id (the asset adds them)."""

NIGHT_COLUMNS: dict[str, PolarsDataType] = {
    "night": pl.String,
    "n": pl.Int64,
    "correct": pl.Int64,
    "accuracy": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "errors": pl.Int64,
    "mean_output_tokens": pl.Float64,
    "median_latency_s": pl.Float64,
    "response_models": pl.String,
    "fingerprints": pl.String,
    "server_changed": pl.Boolean,
    "drifted": pl.Boolean,
    "drift_summary": pl.String,
}
"""rs_dagster.storage.schemas.Nights less model and task."""


# --- the tests -------------------------------------------------------------------------------------


def _exchangeable_p(x: np.ndarray, successes: np.ndarray, answers: np.ndarray) -> float:
    """exchangeable_test on arrays: tonight's 0/1 `x`, each item's successes over all its answers (tonight's
    included) and its number of answers (k_i + 1)."""
    informative = (successes > 0) & (successes < answers)  # s_i = 0 or k_i + 1: tonight's answer is fixed
    if not informative.any():
        return 1.0
    x, successes, answers = x[informative], successes[informative], answers[informative]
    t = int(x.sum())
    # Items with the same s_i / (k_i + 1) are one binomial: a few convolutions instead of one per item.
    common = np.gcd(successes, answers)
    numerator, denominator = successes // common, answers // common
    key = numerator * (int(denominator.max()) + 1) + denominator
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    from scipy.stats import binom  # imported here: scipy.stats costs ~1 s of every `rs` start-up

    pmf = np.ones(1)
    for index, count in zip(first, counts):
        p = numerator[index] / denominator[index]
        pmf = np.convolve(pmf, binom.pmf(np.arange(count + 1), count, p))  # direct: no cancellation, tails stay exact
    lower, upper = float(pmf[: t + 1].sum()), float(pmf[t:].sum())
    return min(1.0, 2.0 * min(lower, upper))


def _binary(values: Sequence[int], what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.int64).reshape(-1)
    if ((array != 0) & (array != 1)).any():
        raise ValueError(f"{what} must be 0/1 outcomes, got {sorted(set(array.tolist()))}")
    return array


def _before_counts(before: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    sums, counts = [], []
    for i, earlier in enumerate(before):
        values = _binary(earlier, f"before[{i}]")
        sums.append(int(values.sum()))
        counts.append(values.size)
    return np.asarray(sums, dtype=np.int64), np.asarray(counts, dtype=np.int64)


def exchangeable_test(now: Sequence[int], before: Sequence[Sequence[int]]) -> float:
    """Two-sided exact p-value that tonight's 0/1 outcomes `now` are exchangeable with the earlier nights'
    outcomes `before[i]` of the same items (any number of earlier answers per item).

    Given item i's s_i successes over its k_i + 1 answers, tonight's x_i ~ Bernoulli(s_i / (k_i + 1)) under the
    null, independently over items; T = Σ x_i is Poisson-binomial, computed exactly by convolution (items
    with s_i = 0 or k_i + 1 carry no information). p = min(1, 2·min(P(T <= t), P(T >= t))). For k_i = 1 this
    is exact McNemar (mcnemar_exact(b, c)). Memory O(n), time O(n²) at worst, a few ms for thousands of items."""
    if len(now) != len(before):
        raise ValueError(f"now has {len(now)} items and before {len(before)}")
    x = _binary(now, "now")
    sums, counts = _before_counts(before)
    return _exchangeable_p(x, x + sums, counts + 1)


def _clip(value: float) -> float:
    return max(-1.0, min(1.0, value))


def _shift_interval(differences: np.ndarray, z: float) -> tuple[float, float, float]:
    n = differences.size
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(differences.mean())
    if n == 1:
        return _clip(mean), math.nan, math.nan
    half = z * float(differences.std(ddof=1)) / math.sqrt(n)
    return _clip(mean), _clip(mean - half), _clip(mean + half)


def paired_shift(now: Sequence[int], before: Sequence[Sequence[int]], z: float = Z95) -> tuple[float, float, float]:
    """Mean over items of x_i − mean(before_i) and its normal interval (mean ± z·sd/√n of the per-item
    differences), clipped to [−1, 1]; (nan, nan, nan) for no item, no interval (nan) for one."""
    if len(now) != len(before):
        raise ValueError(f"now has {len(now)} items and before {len(before)}")
    x = _binary(now, "now").astype(np.float64)
    sums, counts = _before_counts(before)
    if (counts == 0).any():
        raise ValueError("every item needs at least one earlier answer")
    return _shift_interval(x - sums / np.maximum(counts, 1), z)


def _rank(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    if a.size == 0 or b.size == 0:
        return 1.0, math.nan
    shift = float(np.median(a) - np.median(b))
    first = a[0]
    if (a == first).all() and (b == first).all():
        return 1.0, shift
    from scipy.stats import mannwhitneyu  # imported here, as above

    p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return (min(1.0, max(0.0, p)) if math.isfinite(p) else 1.0), shift


def rank_test(now: Sequence[float], before: Sequence[float]) -> tuple[float, float]:
    """Two-sided Mann–Whitney U p-value of `now` against `before` (normal approximation with the tie
    correction, or exact for small untied samples: scipy's default) and the shift median(now) − median(before).
    p = 1.0 when either side is empty or every value is the same (shift nan when a side is empty)."""
    return _rank(np.asarray(now, dtype=np.float64).reshape(-1), np.asarray(before, dtype=np.float64).reshape(-1))


# --- a night's rows --------------------------------------------------------------------------------


def _failed() -> pl.Expr:
    return pl.col("error").is_not_null() | (pl.col("outcome") == Outcome.ERROR.value)


def published_answers(answers: pl.DataFrame) -> pl.DataFrame:
    """The published canary rows of watched nights, one per (night, item) (the first), with `failed`
    (an error row), `answered` and `correct` (rs_dagster.scoring.outcomes, errors never answered)."""
    rows = answers.filter((pl.col("item_set") == PUBLISHED) & ~pl.col("night").str.starts_with(EVAL_NIGHT))
    rows = rows.unique(subset=["night", "test_case_id"], keep="first", maintain_order=True)
    return rows.with_columns(_failed().alias("failed")).with_columns(
        (is_answered() & ~pl.col("failed")).alias("answered"),
        (is_correct() & ~pl.col("failed")).alias("correct"),
    )


def _signed(value: float, digits: int = 1, unit: str = "") -> str:
    text = f"{abs(value):,.{digits}f}{unit}"
    if round(abs(value), digits) == 0:
        return "±" + text
    return ("−" if value < 0 else "+") + text


def _q_words(q: float | None) -> str:
    if q is None:
        return "q n/a"
    return "q<0.0001" if q < 0.0001 else f"q={q:.4f}"


def _detail(row: dict) -> str:
    metric, n, q = row["metric"], row["n_shared"], row["q_value"]
    if row["now"] is None:
        return f"{metric}: no items shared"
    if metric == "accuracy":
        interval = ""
        if row["shift_low"] is not None:
            interval = f", 95% CI {_signed(100 * row['shift_low'])} to {_signed(100 * row['shift_high'])}"
        return (f"accuracy {row['before']:.3f} → {row['now']:.3f} on {n} items ({_signed(100 * row['shift'])} points{interval}), "
                f"{_q_words(q)}")
    if metric == "output_tokens":
        return (f"median output tokens {row['before']:,.0f} → {row['now']:,.0f} ({_signed(row['shift'], 0)}) on {n} items, "
                f"{_q_words(q)}")
    return (f"median latency {row['before']:.2f} s → {row['now']:.2f} s ({_signed(row['shift'], 2, ' s')}) on {n} items, "
            f"{_q_words(q)} (reported, never an alarm)")


def _row(night: str, comparison: str, compared_to: str, scope: str, metric: str, n: int, **values: float | None) -> dict:
    row: dict = {"night": night, "comparison": comparison, "compared_to": compared_to, "scope": scope, "metric": metric,
                 "n_shared": n, "now": None, "before": None, "shift": None, "shift_low": None, "shift_high": None,
                 "p_value": None, "q_value": None, "alarm": False, "detail": ""}
    row.update({k: (None if v is None or not math.isfinite(v) else v) for k, v in values.items()})
    return row


def _accuracy_rows(tonight: pl.DataFrame, earlier: pl.DataFrame, scopes: list[str], head: tuple[str, str, str]) -> list[dict]:
    now = tonight.filter(pl.col("answered")).select("test_case_id", "point_id", pl.col("correct").cast(pl.Int64).alias("x"))
    before = earlier.filter(pl.col("answered")).group_by("test_case_id").agg(
        pl.col("correct").cast(pl.Int64).sum().alias("s"), pl.len().cast(pl.Int64).alias("k")
    )
    shared = now.join(before, on="test_case_id", how="inner")
    x, s, k = (shared[c].to_numpy().astype(np.int64) for c in ("x", "s", "k"))
    points = shared["point_id"].to_numpy()
    rows = []
    for scope in scopes:
        mask = np.ones(x.size, dtype=bool) if scope == "task" else points == scope
        if not mask.any():
            continue
        xs, ss, ks = x[mask], s[mask], k[mask]
        mean_before = ss / ks
        shift, low, high = _shift_interval(xs - mean_before, Z95)
        rows.append(_row(*head, scope, "accuracy", int(mask.sum()), now=float(xs.mean()), before=float(mean_before.mean()),
                         shift=shift, shift_low=low, shift_high=high, p_value=_exchangeable_p(xs, xs + ss, ks + 1)))
    return rows


def _rank_rows(tonight: pl.DataFrame, earlier: pl.DataFrame, scopes: list[str], head: tuple[str, str, str]) -> list[dict]:
    rows = []
    for metric, column in (("output_tokens", "completion_tokens"), ("latency_s", "latency_s")):
        def values(frame: pl.DataFrame, column: str = column) -> pl.DataFrame:
            return frame.filter(~pl.col("failed") & pl.col(column).is_not_null()).select(
                "test_case_id", "point_id", pl.col(column).cast(pl.Float64).alias("v")
            )

        now, before = values(tonight), values(earlier)
        now = now.join(before.select("test_case_id").unique(), on="test_case_id", how="semi")
        before = before.join(now.select("test_case_id"), on="test_case_id", how="semi")
        now_v, now_p = now["v"].to_numpy(), now["point_id"].to_numpy()
        before_v, before_p = before["v"].to_numpy(), before["point_id"].to_numpy()
        for scope in scopes:
            a = now_v if scope == "task" else now_v[now_p == scope]
            b = before_v if scope == "task" else before_v[before_p == scope]
            if a.size == 0:
                continue
            p, shift = _rank(a, b)
            rows.append(_row(*head, scope, metric, int(a.size), now=float(np.median(a)), before=float(np.median(b)),
                             shift=shift, p_value=p))
    return rows


def _server_sets(rows: pl.DataFrame) -> dict[str, tuple[frozenset[str], ...]]:
    """Per night that got any answer (a non-error row): the sets of reported values of each server field."""
    responded = rows.filter(~pl.col("failed"))
    sets: dict[str, tuple[frozenset[str], ...]] = {}
    for (night,), group in responded.group_by("night"):
        sets[str(night)] = tuple(frozenset(v for v in group[column].to_list() if v is not None) for column, _ in _SERVER_FIELDS)
    return sets


def _server_changes(now: tuple[frozenset[str], ...], before: tuple[frozenset[str], ...]) -> list[str]:
    def shown(values: frozenset[str]) -> str:
        return ",".join(sorted(values)) or "(none)"

    return [f"{label} {shown(b)} → {shown(a)}" for (_, label), a, b in zip(_SERVER_FIELDS, now, before) if a != b]


def _server_row(night: str, head: tuple[str, str, str], sets: dict[str, tuple[frozenset[str], ...]], earlier: list[str]) -> dict:
    row = _row(*head, "task", "server", 0)
    reference = next((n for n in reversed(earlier) if n in sets), None)
    if night not in sets:
        row["detail"] = "server: no answer tonight"
    elif reference is None:
        row["detail"] = "server: no earlier night with an answer"
    else:
        changes = _server_changes(sets[night], sets[reference])
        row["alarm"] = bool(changes)
        since = f" (against {reference})" if reference != earlier[-1] else ""
        if changes:
            row["detail"] = "; ".join(changes) + since
        else:
            now = sets[night]
            row["detail"] = "; ".join(f"{label} {','.join(sorted(v)) or '(none)'}" for (_, label), v in zip(_SERVER_FIELDS, now)) + " (unchanged)"
    return row


def empty_drift() -> pl.DataFrame:
    return pl.DataFrame(schema=DRIFT_COLUMNS)


def night_drift(
    answers: pl.DataFrame, night: str, baseline_nights: int = DEFAULT_BASELINE_NIGHTS, alpha: float = DEFAULT_ALPHA
) -> pl.DataFrame:
    """The drift rows of `night` for one model × task's canary rows (every night's; published items are
    picked here): the Drift schema's columns less model, task and dagster_run_id. Empty when `night` has no
    published row or there is no earlier night."""
    rows = published_answers(answers)
    nights = sorted(set(rows["night"].to_list()))
    earlier = [n for n in nights if n < night]
    if night not in nights or not earlier:
        return empty_drift()
    comparisons = [("previous", [earlier[-1]], earlier[-1])]
    window = earlier[-baseline_nights:] if baseline_nights > 0 else []
    if len(window) >= 2:
        comparisons.append(("baseline", window, f"{window[0]}..{window[-1]} ({len(window)} nights)"))
    wanted = {night, *(n for _, w, _ in comparisons for n in w)}
    rows = rows.filter(pl.col("night").is_in(sorted(wanted)))
    tonight = rows.filter(pl.col("night") == night)
    scopes = ["task", *sorted(set(tonight["point_id"].to_list()))]
    sets = _server_sets(rows)
    tests: list[dict] = []
    servers: list[dict] = []
    for comparison, compared, label in comparisons:
        head = (night, comparison, label)
        before = rows.filter(pl.col("night").is_in(compared))
        tests += _accuracy_rows(tonight, before, scopes, head)
        tests += _rank_rows(tonight, before, scopes, head)
        servers.append(_server_row(night, head, sets, earlier))
    for family in (ALARM_METRICS, tuple(m for m in METRICS if m not in ALARM_METRICS)):
        members = [r for r in tests if r["metric"] in family and r["p_value"] is not None]
        for r, q in zip(members, benjamini_hochberg([r["p_value"] for r in members])):
            r["q_value"] = q
    for r in tests:
        r["alarm"] = r["metric"] in ALARM_METRICS and r["q_value"] is not None and r["q_value"] < alpha
        r["detail"] = _detail(r)
    order = {m: i for i, m in enumerate((*METRICS, "server"))}
    ranked = sorted(tests + servers, key=lambda r: (r["comparison"] != "previous", r["scope"] != "task", r["scope"], order[r["metric"]]))
    return pl.DataFrame(ranked, schema=DRIFT_COLUMNS)


# --- words and the nights' summary -----------------------------------------------------------------


def drift_words(drift_rows: pl.DataFrame) -> str:
    """The alarm rows in words, `<scope> <comparison>: <detail>` joined by "; " ('' when nothing moved):
    which scopes moved and by how much, with intervals and q-values, or what the server changed."""
    if drift_rows.is_empty() or "alarm" not in drift_rows.columns:
        return ""
    alarms = drift_rows.filter(pl.col("alarm"))
    return "; ".join(f"{r['scope']} {r['comparison']}: {r['detail']}" for r in alarms.iter_rows(named=True))


def night_summary(answers: pl.DataFrame, drift_rows: pl.DataFrame) -> pl.DataFrame:
    """One row per watched night of `answers` (published items): the Nights schema's columns less model and
    task. n = answered rows (errors and truncations left out), accuracy with its Wilson 95% interval, error
    rows, mean output tokens and median latency of the non-error rows, the reported models and fingerprints,
    server_changed against the latest earlier night that got an answer, and the night's alarms from
    `drift_rows` (night_drift's rows of any nights; a frame without columns reads as none)."""
    rows = published_answers(answers)
    if rows.is_empty():
        return pl.DataFrame(schema=NIGHT_COLUMNS)
    working = ~pl.col("failed")
    counts = rows.group_by("night").agg(
        pl.col("answered").sum().cast(pl.Int64).alias("n"),
        pl.col("correct").sum().cast(pl.Int64).alias("correct"),
        pl.col("failed").sum().cast(pl.Int64).alias("errors"),
        pl.col("completion_tokens").filter(working).cast(pl.Float64).mean().alias("mean_output_tokens"),
        pl.col("latency_s").filter(working).cast(pl.Float64).median().alias("median_latency_s"),
    ).sort("night")
    sets = _server_sets(rows)
    has_alarms = not drift_rows.is_empty() and {"night", "alarm"} <= set(drift_rows.columns)
    out = []
    responded: list[str] = []
    for row in counts.iter_rows(named=True):
        night = row["night"]
        reported = sets.get(night, (frozenset(), frozenset()))
        changed = night in sets and bool(responded) and bool(_server_changes(sets[night], sets[responded[-1]]))
        if night in sets:
            responded.append(night)
        n, correct = row["n"], row["correct"]
        low, high = wilson_interval(correct, n) if n else (None, None)
        of_night = drift_rows.filter(pl.col("night") == night) if has_alarms else pl.DataFrame()
        out.append({
            **row,
            "accuracy": correct / n if n else None,
            "ci_low": low,
            "ci_high": high,
            "response_models": ",".join(sorted(reported[0])),
            "fingerprints": ",".join(sorted(reported[1])),
            "server_changed": changed,
            "drifted": bool(has_alarms and of_night["alarm"].any()),
            "drift_summary": drift_words(of_night),
        })
    return pl.DataFrame(out, schema=NIGHT_COLUMNS)
