"""ReasonScore (rs_dagster.stats.reasonscore): the per-task scores and their geometric mean against values
computed here by hand, the truncation ratio in points and the leaderboard SQL, the bootstrap, the report
section, and the whole path over real HTTP: a scripted server with a known accuracy and a known share of
truncations per task, evaluated through rs_dagster.orchestrate.evaluate."""

from __future__ import annotations

import math
import re

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest
from helpers import GOLDEN, Oracle, _wrong, lab_env, make_lab, rs_process, scripted_model

from rs_dagster.defs.resources import EvalScope
from rs_dagster.explore import views
from rs_dagster.orchestrate import evaluate
from rs_dagster.stats.intervals import Z95, excess_over_chance, truncation_ratio, wilson_interval
from rs_dagster.stats.points import aggregate_points
from rs_dagster.stats.reasonscore import FLOOR, bootstrap_v2, cell, combine, derived_seed, reasonscores, v1_task_score, v2_task_score
from rs_dagster.storage import schemas
from rs_dagster.storage.sql_models import register_functions
from rs_dagster.storage.warehouse import Warehouse, validate
from rs_dagster.testing.scripted_server import Reply, ScriptedServer


def wilson_upper_by_hand(k: int, n: int) -> float:
    """(p + z²/2n + z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n), written out again."""
    p, z2 = k / n, Z95 * Z95
    return (p + z2 / (2 * n) + Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))) / (1 + z2 / n)


# --- formulas -------------------------------------------------------------------------------------------


def test_the_geometric_mean_punishes_one_collapsed_task():
    """ReasonScape's example: eleven tasks at 0.95 and one at 0.05. Its page prints 618 for the geometric
    mean, but (0.95¹¹ · 0.05)^(1/12) = exp((11·ln 0.95 + ln 0.05) / 12) = exp(−0.29667) = 0.7433 → 743; the
    arithmetic mean is 875. With the collapsed task at the floor (0.01) the score is 650."""
    scores = [0.95] * 11 + [0.05]
    assert combine(scores) == pytest.approx(743.294, abs=1e-3)
    assert 1000 * sum(scores) / len(scores) == pytest.approx(875.0)
    assert combine([0.95] * 11 + [FLOOR]) == pytest.approx(650.0, abs=1e-3)
    assert combine([1.0] * 5) == 1000.0 and combine([FLOOR] * 3) == pytest.approx(10.0)
    with pytest.raises(ValueError):
        combine([])


def test_truncation_ratio_leaves_errors_out():
    assert truncation_ratio(3, 10) == 3 / 13 and truncation_ratio(0, 5) == 0.0 and truncation_ratio(4, 0) == 1.0
    assert truncation_ratio(0, 0) is None  # every sample an error: nothing to say
    # The point of tests/test_stats.py: 6 correct, 2 incorrect, 2 unparsed, 3 truncated, 7 errors.
    outcomes = ["correct"] * 6 + ["incorrect"] * 2 + ["unparsed"] * 2 + ["truncated"] * 3 + ["error"] * 7
    scored = pl.DataFrame({"model": "m", "task": "t", "point_id": "p", "test_case_id": [f"c{i}" for i in range(20)], "outcome": outcomes,
                           "flexible_outcome": outcomes, "guess_chance": 0.5, "completion_tokens": [10] * 20, "reasoning_tokens": [None] * 20,
                           "answer_phase": ["single"] * 20}, schema_overrides={"reasoning_tokens": pl.Int64})
    cases = pl.DataFrame({"point_id": ["p"], "params_json": ["{}"], "tiers": [["easy"]], "surfaces": [[]], "projections": [[]]},
                         schema_overrides={"surfaces": pl.List(pl.String), "projections": pl.List(pl.String)})
    row = validate("points", schemas.Points, aggregate_points(scored, cases)).row(0, named=True)
    assert row["truncation_rate"] == 3 / 20 and row["truncation_ratio"] == 3 / 13


def test_the_sql_function_is_the_python_one():
    with duckdb.connect() as con:
        register_functions(con)
        assert con.execute("SELECT truncation_ratio(3, 10), truncation_ratio(0, 0), truncation_ratio(NULL, 2)").fetchone() == (3 / 13, None, None)


def test_the_leaderboard_pools_the_truncation_ratio(tmp_path):
    """Over the hand-built points of tests/test_sql_models.py: sum(truncated) / (sum(answered) + sum(truncated))
    per model, task and tier; and reasonscore_tasks pools the same numbers as the leaderboard."""
    from test_sql_models import run_models, write_inputs

    points = write_inputs(tmp_path / "rs.duckdb")
    board = run_models(tmp_path / "rs.duckdb")["leaderboard"]
    _, tasks = reasonscores(points, resamples=50)
    assert board.height == tasks.height
    for row in board.iter_rows(named=True):
        tier = points.filter((pl.col("model") == row["model"]) & pl.col("tiers").list.contains(row["tier"]))
        truncated, answered = tier["truncated"].sum(), tier["answered"].sum()
        assert row["truncation_ratio"] == pytest.approx(truncated / (answered + truncated))
        assert row["truncation_ratio"] >= row["truncation_rate"]  # errors left out of the denominator
        mine = tasks.filter((pl.col("model") == row["model"]) & (pl.col("tier") == row["tier"]) & (pl.col("task") == row["task"])).row(0, named=True)
        for column in ("accuracy", "ci_low", "ci_high", "guess_chance", "truncation_ratio", "excess_accuracy"):
            assert mine[column] == pytest.approx(row[column]), column
        assert (mine["samples"], mine["answered"], mine["correct"], mine["errors"]) == (row["samples"], row["answered"], row["correct"], row["errors"])


def test_v1_task_score_by_hand():
    # 8 of 10 answered right, 2 truncated, chance 1/2: Wilson upper 0.94332, excess 0.88664, ratio 2/12.
    upper = wilson_upper_by_hand(8, 10)
    assert upper == pytest.approx(0.94332, abs=1e-5) and upper == pytest.approx(wilson_interval(8, 10)[1])
    assert v1_task_score(8, 10, 2, 0.5) == pytest.approx((upper - 0.5) / 0.5 - 2 / 12)
    assert v1_task_score(8, 10, 2, 0.5) == pytest.approx(0.71997, abs=1e-5)
    assert v1_task_score(10, 10, 0, 0.25) == 1.0  # a perfect task scores 1 whatever its n (upper bound = 1)
    assert v1_task_score(0, 0, 7, 0.0) == FLOOR  # nothing answered, all truncated
    assert v1_task_score(1, 40, 0, 0.5) == FLOOR  # upper bound below chance
    with pytest.raises(ValueError):
        v1_task_score(0, 0, 0, 0.0)  # all errors: no score


def test_v2_task_score_by_hand():
    assert v2_task_score(0.8, 2 / 12, 0.5) == pytest.approx(5 / 6 * 0.6)  # (1 − τ) · (a − g)/(1 − g) = 0.5
    assert v2_task_score(0.75, 0.25, 0.0) == pytest.approx(0.5625)
    assert v2_task_score(0.4, 0.0, 0.5) == FLOOR  # below chance: max(0, ·) then the floor
    assert v2_task_score(None, 1.0, 0.0) == FLOOR and v2_task_score(1.0, 0.0, 0.5) == 1.0


def test_cells_read_like_reasonscape():
    assert cell(0.58, 0.62, 0.05) == ".58 - .62 [-.05]"
    assert cell(0.912, 1.0, 0.0) == ".91 - 1.00"  # nothing truncated: no penalty shown
    assert cell(None, None, 1.0) == "— [-1.00]" and cell(None, None, None) == "errors only"


# --- per model × tier from points -------------------------------------------------------------------------


def point(model: str, task: str, pid: str, tiers: list[str], correct: int, answered: int, truncated: int, errors: int = 0,
          g: float = 0.0, tokens: float | None = 100.0) -> dict:
    n = answered + truncated + errors
    return {"model": model, "task": task, "point_id": pid, "tiers": tiers, "n": n, "answered": answered, "correct": correct,
            "truncated": truncated, "errors": errors, "guess_chance": g, "mean_completion_tokens": tokens}


POINTS = pl.DataFrame([
    # alpha, easy: arithmetic pools two points (one also medium); boolean one point at chance 1/2.
    point("alpha", "arithmetic", "a1", ["easy"], 30, 40, 10, g=0.0, tokens=200.0),
    point("alpha", "arithmetic", "a2", ["easy", "medium"], 20, 20, 0, errors=5, g=0.0, tokens=100.0),
    point("alpha", "boolean", "b1", ["easy"], 36, 40, 0, g=0.5, tokens=50.0),
    point("alpha", "boolean", "b2", ["medium"], 0, 0, 0, errors=8, g=0.5, tokens=None),  # all errors: boolean drops out of medium
    point("alpha", "arithmetic", "a3", [], 0, 10, 0),  # on a projection only: in no tier
    # beta, easy: arithmetic all truncated (floor), boolean perfect.
    point("beta", "arithmetic", "a1", ["easy"], 0, 0, 16, g=0.0, tokens=1000.0),
    point("beta", "boolean", "b1", ["easy"], 16, 16, 0, g=0.5, tokens=1000.0),
], schema_overrides={"tiers": pl.List(pl.String), "mean_completion_tokens": pl.Float64})


def test_scores_per_model_and_tier_by_hand():
    scores, tasks = reasonscores(POINTS, resamples=400, seed=7)
    validate("reasonscore", schemas.ReasonScores, scores)
    validate("reasonscore_tasks", schemas.ReasonScoreTasks, tasks)
    assert scores.select("model", "tier", "tasks").rows() == [("alpha", "easy", 2), ("alpha", "medium", 1), ("beta", "easy", 2)]
    assert tasks.select("model", "tier", "task").rows() == [
        ("alpha", "easy", "arithmetic"), ("alpha", "easy", "boolean"), ("alpha", "medium", "arithmetic"), ("alpha", "medium", "boolean"),
        ("beta", "easy", "arithmetic"), ("beta", "easy", "boolean"),
    ]
    row = {(r["model"], r["tier"]): r for r in scores.iter_rows(named=True)}
    part = {(r["model"], r["tier"], r["task"]): r for r in tasks.iter_rows(named=True)}

    # alpha / easy / arithmetic: 50 of 60 answered, 10 truncated, 5 errors (75 samples); chance 0.
    arithmetic = part[("alpha", "easy", "arithmetic")]
    assert (arithmetic["points"], arithmetic["samples"], arithmetic["answered"], arithmetic["correct"]) == (2, 75, 60, 50)
    assert arithmetic["truncation_ratio"] == pytest.approx(10 / 70)
    assert arithmetic["v1_task"] == pytest.approx(wilson_upper_by_hand(50, 60) - 10 / 70)
    assert arithmetic["v2_task"] == pytest.approx((1 - 10 / 70) * 50 / 60)
    assert arithmetic["mean_completion_tokens"] == pytest.approx((200 * 50 + 100 * 25) / 75)
    # alpha / easy / boolean: 36 of 40, chance 1/2, nothing truncated.
    boolean = part[("alpha", "easy", "boolean")]
    assert boolean["v1_task"] == pytest.approx((wilson_upper_by_hand(36, 40) - 0.5) / 0.5)
    assert boolean["v2_task"] == pytest.approx((0.9 - 0.5) / 0.5)
    alpha = row[("alpha", "easy")]
    assert alpha["v1"] == pytest.approx(1000 * math.sqrt(arithmetic["v1_task"] * boolean["v1_task"]))
    assert alpha["v2"] == pytest.approx(1000 * math.sqrt((1 - 10 / 70) * 50 / 60 * 0.8))
    assert alpha["tokens"] == pytest.approx(((200 * 50 + 100 * 25) / 75 + 50) / 2)
    assert alpha["v1_per_token"] == pytest.approx(alpha["v1"] / alpha["tokens"])
    assert (alpha["points"], alpha["samples"]) == (3, 115)

    # alpha / medium: boolean's only point is all errors, so medium is arithmetic alone (20 of 20).
    errors_only = part[("alpha", "medium", "boolean")]
    assert errors_only["truncation_ratio"] is None and errors_only["v1_task"] is None and errors_only["v2_task"] is None
    assert row[("alpha", "medium")]["v2"] == 1000.0 and row[("alpha", "medium")]["v1"] == 1000.0
    assert row[("alpha", "medium")]["v2_low"] == row[("alpha", "medium")]["v2_high"] == 1000.0  # nothing to redraw

    # beta / easy: arithmetic all truncated sits at the floor; boolean perfect.
    assert part[("beta", "easy", "arithmetic")]["accuracy"] is None and part[("beta", "easy", "arithmetic")]["v2_task"] == FLOOR
    assert row[("beta", "easy")]["v2"] == pytest.approx(1000 * math.sqrt(FLOOR)) == pytest.approx(100.0)
    assert row[("beta", "easy")]["v1"] == pytest.approx(100.0)
    assert row[("beta", "easy")]["v2_low"] == row[("beta", "easy")]["v2_high"] == pytest.approx(100.0)


def test_the_bootstrap_is_seeded_and_per_model():
    scores, _ = reasonscores(POINTS, resamples=400, seed=7)
    again, _ = reasonscores(POINTS, resamples=400, seed=7)
    assert scores.equals(again)
    alone, _ = reasonscores(POINTS.filter(pl.col("model") == "alpha"), resamples=400, seed=7)
    assert alone.equals(scores.filter(pl.col("model") == "alpha"))  # another model's rows change nothing
    other, _ = reasonscores(POINTS, resamples=400, seed=8)
    assert other["v2_low"][0] != scores["v2_low"][0]
    alpha = scores.row(0, named=True)
    assert alpha["seed"] == derived_seed(7, "alpha", "easy")
    assert alpha["v2_low"] < alpha["v2_median"] < alpha["v2_high"] and alpha["v2_low"] < alpha["v2"] < alpha["v2_high"]
    # The row's seed redraws its replicates.
    counts = [([(30, 40, 10), (20, 20, 0)], 0.0), ([(36, 40, 0)], 0.5)]
    replicates = bootstrap_v2(counts, 400, alpha["seed"])
    assert np.percentile(replicates, [2.5, 50, 97.5]) == pytest.approx([alpha["v2_low"], alpha["v2_median"], alpha["v2_high"]])


def test_the_bootstrap_interval_covers_the_truth():
    """Three tasks of two points each, 40 samples a point, drawn from known (accuracy, truncation) with
    guess chance 0, 1/2, 1/4: over 200 simulated evaluations the 95% interval holds the true v2 in at
    least 88% of them (the estimator is slightly biased at n = 80 a task, so coverage sits a little
    under nominal)."""
    truth = [(0.7, 0.1, 0.0), (0.85, 0.0, 0.5), (0.6, 0.2, 0.25)]
    true_v2 = combine(v2_task_score(a, tau, g) for a, tau, g in truth)
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(200):
        tasks = []
        for a, tau, g in truth:
            pts = []
            for _ in range(2):
                correct, wrong, truncated = rng.multinomial(40, [(1 - tau) * a, (1 - tau) * (1 - a), tau])
                pts.append((int(correct), int(correct + wrong), int(truncated)))
            tasks.append((pts, g))
        low, high = np.percentile(bootstrap_v2(tasks, 500, trial), [2.5, 97.5])
        covered += low <= true_v2 <= high
    assert covered >= 176, covered


# --- report -------------------------------------------------------------------------------------------------


class Scores:
    """The two tables the leaderboard's ReasonScore section reads."""

    def __init__(self, scores: pl.DataFrame, tasks: pl.DataFrame):
        self.scores, self.tasks = scores, tasks

    def reasonscore(self) -> pl.DataFrame:
        return self.scores

    def reasonscore_tasks(self) -> pl.DataFrame:
        return self.tasks


def test_report_section_ranks_draws_a_radar_and_says_why_when_empty():
    three = pl.concat([POINTS, pl.DataFrame([point("alpha", "dates", "d1", ["easy"], 5, 10, 0), point("beta", "dates", "d1", ["easy"], 9, 10, 1)],
                                            schema_overrides={"tiers": pl.List(pl.String), "mean_completion_tokens": pl.Float64})])
    scores, tasks = reasonscores(three, resamples=200)
    section = views._reasonscore(Scores(scores, tasks))  # a stand-in for Tables: the section reads these two
    assert {b["name"] for b in section if b["type"] == "chart"} == {"reasonscore", "reasonscore-radar-easy", "reasonscore-bars-medium"}
    assert any(b["type"] == "note" and "No radar for medium: it has 1 scored task and a radar needs three" in b["text"] for b in section)
    ranked = scores.filter(pl.col("tier") == "easy").sort("v2", descending=True)
    easy = next(b for b in section if b.get("name") == "reasonscore-easy")
    assert [row[1] for row in easy["rows"]] == ranked["model"].to_list()
    beta = tasks.filter((pl.col("model") == "beta") & (pl.col("tier") == "easy") & (pl.col("task") == "dates")).row(0, named=True)
    text = str(easy["rows"])
    assert cell(beta["ci_low"], beta["ci_high"], beta["truncation_ratio"]) in text and "[-.09]" in text
    assert ranked.height == 2

    empty = views._reasonscore(Scores(pl.DataFrame(), pl.DataFrame()))
    assert [b["type"] for b in empty] == ["heading", "note"] and empty[1]["text"].startswith("No ReasonScore:")
    assert empty[1]["text"].count(". ") == 0  # one sentence


# --- over real HTTP -------------------------------------------------------------------------------------------

ACCURACY = {"arithmetic": 0.75, "boolean": 0.875}
TRUNCATE_EVERY = {"arithmetic": 4, "boolean": 8}  # every 4th (8th) item runs out of room: τ = 1/4 (1/8)
GUESS = {"arithmetic": 0.0, "boolean": 0.5}
ANSWER_TOKENS, TRUNCATED_TOKENS = 100, 400
ITEMS = 64


def test_reasonscore_over_real_http(tmp_path, instance):
    oracle = Oracle(make_lab(tmp_path / "probe", {}), items_per_point=ITEMS)

    def respond(body):
        known = oracle.lookup(body)
        every = TRUNCATE_EVERY[known.task]
        if known.index % every == every - 1:
            return Reply(content="Let me think about the first two terms and", finish_reason="length", completion_tokens=TRUNCATED_TOKENS)
        right = ((known.index + 0.5) * GOLDEN) % 1.0 < ACCURACY[known.task]
        return Reply(content=f"Working it out.\n\nANSWER: {known.answer if right else _wrong(known)}", completion_tokens=ANSWER_TOKENS)

    with ScriptedServer(respond) as server:
        settings = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url)})
        evaluate(settings, instance, ["scripted"], ["arithmetic", "boolean"], EvalScope(tiers=["easy"], precision=str(ITEMS)))
        assert server.completion_requests == 2 * 2 * ITEMS
    warehouse = Warehouse(settings.db_path)
    points = warehouse.query("SELECT * FROM points ORDER BY task, point_id")
    scores = warehouse.query("SELECT * FROM reasonscore")
    tasks = warehouse.query("SELECT * FROM reasonscore_tasks ORDER BY task")
    assert scores.select("model", "tier", "tasks", "points", "samples").rows() == [("scripted", "easy", 2, 4, 4 * ITEMS)]
    score = scores.row(0, named=True)

    # The truncation ratio is known exactly: every 4th / 8th item of each point.
    assert points["truncation_ratio"].to_list() == [1 / 4, 1 / 4, 1 / 8, 1 / 8]
    assert tasks["truncation_ratio"].to_list() == [1 / 4, 1 / 8]
    board = warehouse.query("SELECT task, truncation_ratio, accuracy, ci_low, ci_high, guess_chance FROM leaderboard ORDER BY task")
    for column in ("truncation_ratio", "accuracy", "ci_low", "ci_high", "guess_chance"):
        assert tasks[column].to_list() == pytest.approx(board[column].to_list()), column  # one pooling, two places

    # v2: its bootstrap interval holds the score of the true accuracies and truncation ratios.
    true_v2 = combine(v2_task_score(ACCURACY[t], 1 / TRUNCATE_EVERY[t], GUESS[t]) for t in ACCURACY)
    assert true_v2 == pytest.approx(1000 * math.sqrt(0.75 * 0.75 * (1 - 1 / 8) * (0.875 - 0.5) / 0.5))  # 607.6
    assert score["v2_low"] <= true_v2 <= score["v2_high"], (score["v2_low"], true_v2, score["v2_high"])
    assert score["v2_low"] <= score["v2"] <= score["v2_high"] and score["v2_high"] - score["v2_low"] < 250

    # v1: the formula applied to the measured points, pooled per task.
    by_task = points.group_by("task").agg(pl.col("correct").sum(), pl.col("answered").sum(), pl.col("truncated").sum(), pl.col("guess_chance").mean())
    s = []
    for row in by_task.iter_rows(named=True):
        upper = excess_over_chance(wilson_upper_by_hand(row["correct"], row["answered"]), row["guess_chance"])
        s.append(min(1.0, max(FLOOR, upper - row["truncated"] / (row["answered"] + row["truncated"]))))
    assert score["v1"] == pytest.approx(1000 * math.exp(sum(math.log(x) for x in s) / len(s)))
    assert score["v1"] > score["v2"]  # optimistic about sampling: the upper bound

    # Tokens per sample are known too: 100 per answer, 400 per truncation.
    expected_tokens = sum((1 - 1 / TRUNCATE_EVERY[t]) * ANSWER_TOKENS + TRUNCATED_TOKENS / TRUNCATE_EVERY[t] for t in ACCURACY) / 2
    assert score["tokens"] == pytest.approx(expected_tokens) == pytest.approx(156.25)
    assert score["v1_per_token"] == pytest.approx(score["v1"] / 156.25) and score["v2_per_token"] == pytest.approx(score["v2"] / 156.25)

    metadata = instance.get_latest_materialization_event(dg.AssetKey("reasonscore")).asset_materialization.metadata
    assert metadata["dagster/row_count"].value == 1 and "data:image/svg+xml;base64" in metadata["chart"].value
    page = "".join(p.read_text() for p in (settings.report_dir / "data").glob("*.js"))
    assert '"text":"ReasonScore"' in page and "No radar for easy: it has 2 scored tasks" in page

    # `rs leaderboard` ranks by ReasonScore, each task as `low - high [-ratio]`.
    shown = rs_process(["leaderboard"], lab_env(settings), stdout=-1, stderr=-1)
    stdout, stderr = shown.communicate(timeout=120)
    assert shown.returncode == 0, stderr[-2000:]
    assert "ReasonScore — easy" in stdout and f"{score['v2']:.0f}" in stdout and f"[{score['v2_low']:.0f}, {score['v2_high']:.0f}]" in stdout
    arithmetic = tasks.row(0, named=True)
    assert cell(arithmetic["ci_low"], arithmetic["ci_high"], 0.25) in stdout and re.search(r"\[-\.25\]", stdout)
    assert stdout.index("ReasonScore — easy") < stdout.index("Leaderboard (")
