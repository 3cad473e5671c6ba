"""How well a model's reasoning trace compresses, per sample and per grid point (ReasonScape's
"compression" analysis): degenerate repetition, a model that loops until it hits max_tokens,
compresses far better than reasoning that makes progress.

compression ratio  gzip size / raw size of a text, both in bytes of its UTF-8 encoding:
                   len(gzip.compress(text, compresslevel=9, mtime=0)) / len(text). The gzip container
                   (18 bytes of header and trailer) is included, so a short text has a ratio above 1
                   (the answer "ANSWER: 12" is 30/10 = 3.0); an empty or absent text has none.
                   Natural-language reasoning of a few kB lands near 0.3-0.5, a phrase repeated
                   for kilobytes near 0.01-0.05.
loop               a reasoning trace of at least LOOP_MIN_BYTES bytes whose ratio is below
                   LOOP_FACTOR × its point's reference ratio, or below LOOP_FLOOR whatever its point.
                   The reference is the median ratio of the point's traces of at least LOOP_MIN_BYTES
                   that ended with an answer (finish_reason not `length`), so loops that run into
                   max_tokens do not drag down the yardstick they are measured against; a point with
                   no such trace uses the median of all its traces of that length. The floor catches
                   a point where every trace loops (its median is then a loop's ratio).
distributions      per grid point and strict outcome (correct, incorrect, unparsed, ambiguous, truncated) and over
                   all of them (`all`): samples, traces, p10/p50/p90 of the reasoning ratio (linear
                   interpolation between order statistics), the median answer ratio, mean tokens, and
                   how many traces are loops.

Samples whose request failed (outcome `error`) produced no text and are left out.
"""

from __future__ import annotations

import gzip
import statistics

import polars as pl

from rs_dagster.scoring.outcomes import WITH_TEXT, Outcome

LOOP_MIN_BYTES = 1024
"""Shorter traces are never flagged: gzip's fixed overhead dominates a short text's ratio."""
LOOP_FACTOR = 0.5
LOOP_FLOOR = 0.1
"""Compressing 10× is beyond non-degenerate reasoning of any length seen in practice."""
OUTCOME_GROUPS = ("all", *(o.value for o in WITH_TEXT))

SAMPLE_COLUMNS = {
    "model": pl.String,
    "task": pl.String,
    "point_id": pl.String,
    "test_case_id": pl.String,
    "sample_index": pl.Int64,
    "request_hash": pl.String,
    "outcome": pl.String,
    "finish_reason": pl.String,
    "completion_tokens": pl.Int64,
    "reasoning_tokens": pl.Int64,
    "reasoning_bytes": pl.Int64,
    "reasoning_gzip_bytes": pl.Int64,
    "reasoning_ratio": pl.Float64,
    "answer_bytes": pl.Int64,
    "answer_gzip_bytes": pl.Int64,
    "answer_ratio": pl.Float64,
    "reference_ratio": pl.Float64,
    "loop": pl.Boolean,
}

POINT_COLUMNS = {
    "model": pl.String,
    "task": pl.String,
    "point_id": pl.String,
    "outcome": pl.String,
    "samples": pl.Int64,
    "traces": pl.Int64,
    "ratio_p10": pl.Float64,
    "ratio_p50": pl.Float64,
    "ratio_p90": pl.Float64,
    "answer_ratio_p50": pl.Float64,
    "reference_ratio": pl.Float64,
    "mean_completion_tokens": pl.Float64,
    "mean_reasoning_tokens": pl.Float64,
    "loops": pl.Int64,
    "loop_share": pl.Float64,
}


def gzip_sizes(text: str | None) -> tuple[int, int | None]:
    """(raw bytes, gzip bytes) of a text's UTF-8 encoding; gzip bytes None for an empty or absent text."""
    raw = (text or "").encode("utf-8")
    if not raw:
        return 0, None
    return len(raw), len(gzip.compress(raw, compresslevel=9, mtime=0))


def compression_ratio(text: str | None) -> float | None:
    """gzip size / raw size in bytes; None for an empty or absent text."""
    raw, packed = gzip_sizes(text)
    return None if packed is None else packed / raw


def reference_ratio(ratios: list[float | None], raw_bytes: list[int], finished: list[bool]) -> float | None:
    """A point's typical reasoning ratio: the median over its traces of at least LOOP_MIN_BYTES that
    ended with an answer, else over all its traces of that length; None when it has none."""
    long = [(r, f) for r, b, f in zip(ratios, raw_bytes, finished) if r is not None and b >= LOOP_MIN_BYTES]
    pool = [r for r, f in long if f] or [r for r, _ in long]
    if not pool:
        return None
    return float(statistics.median(pool))


def is_loop(ratio: float | None, raw_bytes: int, reference: float | None) -> bool:
    if ratio is None or raw_bytes < LOOP_MIN_BYTES:
        return False
    return ratio < LOOP_FLOOR or (reference is not None and ratio < LOOP_FACTOR * reference)


def sample_compression(samples: pl.DataFrame) -> pl.DataFrame:
    """One row per sample that produced text (every outcome but `error`), with its ratios and loop flag.

    `samples` needs model, task, point_id, test_case_id, sample_index, request_hash, outcome,
    finish_reason, completion_tokens, reasoning_tokens, reasoning_text and answer_text."""
    rows = []
    for row in samples.filter(pl.col("outcome") != Outcome.ERROR.value).iter_rows(named=True):
        reasoning_bytes, reasoning_gzip = gzip_sizes(row["reasoning_text"])
        answer_bytes, answer_gzip = gzip_sizes(row["answer_text"])
        rows.append(
            {
                **{c: row[c] for c in ("model", "task", "point_id", "test_case_id", "sample_index", "request_hash", "outcome",
                                       "finish_reason", "completion_tokens", "reasoning_tokens")},
                "reasoning_bytes": reasoning_bytes,
                "reasoning_gzip_bytes": reasoning_gzip,
                "reasoning_ratio": None if reasoning_gzip is None else reasoning_gzip / reasoning_bytes,
                "answer_bytes": answer_bytes,
                "answer_gzip_bytes": answer_gzip,
                "answer_ratio": None if answer_gzip is None else answer_gzip / answer_bytes,
            }
        )
    frame = pl.DataFrame(rows, schema={c: t for c, t in SAMPLE_COLUMNS.items() if c not in ("reference_ratio", "loop")})
    references = {}
    for (point,), group in frame.group_by("point_id"):
        references[point] = reference_ratio(
            group["reasoning_ratio"].to_list(), group["reasoning_bytes"].to_list(), (group["finish_reason"] != "length").fill_null(True).to_list()
        )
    reference = [references.get(p) for p in frame["point_id"]]
    loop = [is_loop(r, b, ref) for r, b, ref in zip(frame["reasoning_ratio"], frame["reasoning_bytes"], reference)]
    frame = frame.with_columns(pl.Series("reference_ratio", reference, dtype=pl.Float64), pl.Series("loop", loop, dtype=pl.Boolean))
    return frame.select(list(SAMPLE_COLUMNS)).sort("point_id", "test_case_id", "sample_index", "request_hash")


def point_compression(samples: pl.DataFrame) -> pl.DataFrame:
    """Per grid point and outcome group (`all` and each strict outcome present): the distribution of
    the reasoning ratio and the loop count, from the rows of sample_compression."""
    tagged = pl.concat([samples.with_columns(group=pl.lit("all")), samples.with_columns(group=pl.col("outcome"))])
    ratio = pl.col("reasoning_ratio")
    frame = tagged.group_by("model", "task", "point_id", "group").agg(
        samples=pl.len().cast(pl.Int64),
        traces=ratio.is_not_null().sum().cast(pl.Int64),
        ratio_p10=ratio.quantile(0.1, interpolation="linear"),
        ratio_p50=ratio.quantile(0.5, interpolation="linear"),
        ratio_p90=ratio.quantile(0.9, interpolation="linear"),
        answer_ratio_p50=pl.col("answer_ratio").quantile(0.5, interpolation="linear"),
        reference_ratio=pl.col("reference_ratio").first(),
        mean_completion_tokens=pl.col("completion_tokens").cast(pl.Float64).mean(),
        mean_reasoning_tokens=pl.col("reasoning_tokens").cast(pl.Float64).mean(),
        loops=pl.col("loop").sum().cast(pl.Int64),
    )
    order = {g: i for i, g in enumerate(OUTCOME_GROUPS)}
    frame = frame.rename({"group": "outcome"}).with_columns(
        loop_share=pl.when(pl.col("traces") > 0).then(pl.col("loops") / pl.col("traces")),
        _order=pl.col("outcome").replace_strict(order, default=len(order), return_dtype=pl.Int64),
    )
    return frame.sort("point_id", "_order").select(list(POINT_COLUMNS)).cast(pl.Schema(POINT_COLUMNS))
