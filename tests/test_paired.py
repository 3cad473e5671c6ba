"""Paired comparison (exact McNemar, Benjamini–Hochberg) and the regression gate: unit tests against
hand-computed values, then end to end over real HTTP with scripted models whose answers differ on
known items."""

import math
import subprocess

import dagster as dg
import polars as pl
import pytest
import yaml
from helpers import GOLDEN, lab_env, make_lab, rs_process
from scipy.stats import false_discovery_control

from rs_dagster.defs.comparisons import GATE
from rs_dagster.defs.resources import EvalScope
from rs_dagster.models.registry import load_models
from rs_dagster.orchestrate import evaluate
from rs_dagster.stats.paired import benjamini_hochberg, compare_models, compare_runs, mcnemar_exact, previous_versions
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.generation import generate_point
from rs_dagster.tasks.manifold import load_manifolds
from rs_dagster.tasks.selection import PointSelection, select_points
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

# --- the statistics, by hand ---------------------------------------------------------------------


def test_exact_mcnemar_matches_hand_computed_binomial_tails():
    assert mcnemar_exact(0, 0) == 1.0  # no discordant pair: no evidence
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 2**5)  # 0.0625: five discordant pairs can never reach 0.05
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 2**6)  # 0.03125
    assert mcnemar_exact(1, 9) == pytest.approx(2 * (1 + 10) / 2**10)  # 2·P(X <= 1), X ~ Bin(10, 1/2) = 0.021484375
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)  # two-sided: symmetric in b and c
    assert mcnemar_exact(2, 8) == pytest.approx(2 * (1 + 10 + 45) / 2**10)  # 0.109375
    assert mcnemar_exact(40, 0) == pytest.approx(2 * 0.5**40)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_benjamini_hochberg_matches_a_hand_computed_example():
    # sorted p: 0.01 (rank 1), 0.03 (2), 0.04 (3), 0.20 (4); p·m/rank = 0.04, 0.06, 0.0533, 0.20;
    # the running minimum from the top gives q = 0.04, 0.0533, 0.0533, 0.20, returned in the input order.
    q = benjamini_hochberg([0.01, 0.04, 0.03, 0.20])
    assert q == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.20])
    assert benjamini_hochberg([0.5, 0.9]) == pytest.approx([0.9, 0.9])
    assert benjamini_hochberg([0.8]) == [0.8]
    assert benjamini_hochberg([]) == []
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
    assert benjamini_hochberg(p) == pytest.approx(list(false_discovery_control(p)))


def _run(model: str, outcomes: list[str], points: list[str]) -> pl.DataFrame:
    n = len(outcomes)
    return pl.DataFrame({
        "model": [model] * n, "task": ["t"] * n, "test_case_id": [f"item{i}" for i in range(n)], "sample_index": [0] * n,
        "point_id": points, "outcome": outcomes, "model_version": ["v"] * n, "spec_version": ["s"] * n, "dagster_run_id": ["r"] * n,
    })


def test_pairs_leave_out_truncated_and_error_samples_and_count_unparsed_as_not_correct():
    points = ["p1"] * 5 + ["p2"] * 5
    a = _run("A", ["correct"] * 6 + ["incorrect", "unparsed", "truncated", "error"], points)
    b = _run("B", ["incorrect", "unparsed", "incorrect", "correct", "correct", "correct", "correct", "correct", "correct", "correct"], points)
    rows = compare_models(pl.concat([a, b]), "A", "v", "B", "v", {"p1": '{"x": 1}', "p2": '{"x": 2}'})
    task = rows.filter(pl.col("level") == "task").row(0, named=True)
    assert (task["pairs"], task["excluded"], task["b"], task["c"]) == (8, 2, 3, 2)  # items 8 and 9 not paired
    assert (task["correct_a"], task["correct_b"]) == (6, 5) and task["p_value"] == 1.0
    p1, p2 = rows.filter(pl.col("level") == "point").sort("params_json").iter_rows(named=True)
    assert (p1["b"], p1["c"], p1["p_value"]) == (3, 0, 0.25)  # A right on 3 items B got wrong or unparsed
    assert (p2["pairs"], p2["excluded"], p2["b"], p2["c"], p2["p_value"]) == (3, 2, 0, 2, 0.5)
    # BH over the three tests of the comparison: p = 1, 0.25, 0.5 -> q = 1, 0.75, 0.75
    assert rows["q_value"].to_list() == pytest.approx([1.0, 0.75, 0.75])
    assert not rows["differs"].any()
    # Items only one run answered are not compared at all.
    assert compare_runs(a, b.with_columns(("other" + pl.col("test_case_id")).alias("test_case_id")), {}).is_empty()


def test_ambiguous_answers_pair_as_not_correct_and_a_sample_stored_twice_is_left_out():
    """A hedge ("5 or 7") is an answer: paired, and not correct. A sample stored twice under one model version
    (which answer was the run's?) is not paired, whatever its rows say, and never read as a hedge."""
    a = _run("A", ["correct", "correct", "ambiguous", "ambiguous", "correct"], ["p"] * 5)
    b = _run("B", ["ambiguous", "correct", "correct", "ambiguous", "correct"], ["p"] * 5)
    twice = b.filter(pl.col("test_case_id") == "item4").with_columns(pl.lit("incorrect").alias("outcome"))
    rows = compare_models(pl.concat([a, b, twice]), "A", "v", "B", "v", {"p": '{"x": 1}'})
    task = rows.filter(pl.col("level") == "task").row(0, named=True)
    assert (task["pairs"], task["excluded"]) == (4, 1)  # item4 is stored twice for B
    assert (task["b"], task["c"], task["correct_a"], task["correct_b"]) == (1, 1, 2, 2)


def test_the_previous_version_is_the_one_scored_last_before_the_current():
    rows = pl.concat([
        _run("M", ["correct"] * 2, ["p"] * 2).with_columns(pl.lit("v1").alias("model_version"), pl.lit("r1").alias("dagster_run_id")),
        _run("M", ["correct"] * 2, ["p"] * 2).with_columns(pl.lit("v2").alias("model_version"), pl.lit("r2").alias("dagster_run_id")),
        _run("M", ["correct"] * 2, ["p"] * 2).with_columns(pl.lit("v3").alias("model_version"), pl.lit("r3").alias("dagster_run_id")),
    ])
    assert previous_versions(rows, "M", "v3", {"r1": 1.0, "r2": 2.0, "r3": 3.0}) == {"t": "v2"}
    assert previous_versions(rows, "M", "v2", {"r1": 1.0, "r2": 2.0, "r3": 3.0}) == {"t": "v3"}  # a model switched back to v2
    assert previous_versions(rows, "M", "v1", {"r1": 1.0, "r2": 3.0, "r3": 2.0}) == {"t": "v2"}
    assert previous_versions(rows.filter(pl.col("model_version") == "v3"), "M", "v3", {}) == {}


def test_the_gate_warns_only_on_a_significant_drop_of_a_models_own_versions():
    from rs_dagster.defs.comparisons import gate_result

    empty = compare_runs(pl.DataFrame(), pl.DataFrame(), {})
    result = gate_result(empty)
    assert result.passed and result.severity == dg.AssetCheckSeverity.WARN and "nothing to compare" in result.description
    before = _run("M", ["correct"] * 10, ["p"] * 10).with_columns(pl.lit("v1").alias("model_version"))
    after = _run("M", ["incorrect"] * 8 + ["correct"] * 2, ["p"] * 10).with_columns(pl.lit("v2").alias("model_version"))
    drop = compare_runs(before, after, {"kind": "versions", "model_a": "M", "version_a": "v1", "model_b": "M", "version_b": "v2"})
    assert drop["p_value"].to_list() == pytest.approx([2 / 2**8] * 2) and drop["worse"].all()
    result = gate_result(drop)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN and result.metadata["regressions"].value == 2
    # The same drop between two different models is reported, but it is not the gate's business.
    assert gate_result(drop.with_columns(pl.lit("models").alias("kind"), pl.lit("N").alias("model_b"))).passed
    # An improvement is a difference, not a regression.
    assert gate_result(compare_runs(after, before, {"kind": "versions", "model_a": "M", "version_a": "v2", "model_b": "M", "version_b": "v1"})).passed


# --- end to end over real HTTP ---------------------------------------------------------------------

ITEMS_PER_POINT = 40
FLIPPED_PER_POINT = 4  # of the base model's correct items, per point: 10% of the 40 items, a 10-point drop


class TwoKindsOfModel:
    """Answers arithmetic items right on about 70% of the items (a low-discrepancy rule over the item
    index), except that a `worse*` served model, or a prompt of the `cot` template, answers the first
    FLIPPED_PER_POINT items of each point that are otherwise right wrong."""

    def __init__(self, settings, tiers: tuple[str, ...]):
        spec = load_manifolds(settings.tasks_dir)["arithmetic"]
        self.items: dict[str, tuple[str, int, str]] = {}  # question -> (point_id, index, answer)
        self.flipped: set[str] = set()
        for point in select_points(spec, PointSelection(tiers=tiers)):
            right = []
            for generated in generate_point(spec.task, spec.name, point.params, spec.doc.global_seed, ITEMS_PER_POINT):
                self.items[generated.item.question] = (point.point_id, generated.index, generated.item.answer)
                if self.base_correct(generated.index):
                    right.append(generated.item.question)
            self.flipped |= set(right[:FLIPPED_PER_POINT])
        self.points = len({point for point, _, _ in self.items.values()})

    @staticmethod
    def base_correct(index: int) -> bool:
        return ((index + 0.5) * GOLDEN) % 1.0 < 0.7

    def __call__(self, body) -> Reply:
        question = body["messages"][-1]["content"].rsplit("\n\n", 1)[0]
        _, index, answer = self.items[question]
        worse = body["model"].startswith("worse") or "Think step by step" in body["messages"][-1]["content"]  # the cot template
        correct = self.base_correct(index) and not (worse and question in self.flipped)
        return Reply(content=f"Adding it up.\n\nANSWER: {answer if correct else int(answer) + 7}")


def _gate(instance: dg.DagsterInstance, run_id: str):
    """The regression gate's evaluation in a run."""
    evaluations = [entry.dagster_event.event_specific_data for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    [evaluation] = [e for e in evaluations if e.check_name == GATE]
    return evaluation


def test_a_planted_ten_point_drop_on_400_shared_items_is_detected_and_identical_runs_are_not(tmp_path, instance):
    settings = make_lab(tmp_path / "lab", {}, tasks=("arithmetic",))
    responder = TwoKindsOfModel(settings, ("easy", "medium"))
    assert responder.points == 10 and len(responder.flipped) == 10 * FLIPPED_PER_POINT
    with ScriptedServer(responder, model_ids=("base", "same", "worse")) as server:
        models = {name: {"base_url": server.base_url, "served_model": name, "sampler": "greedy", "concurrency": 16} for name in ("base", "same", "worse")}
        (settings.inputs / "models.yaml").write_text(yaml.safe_dump({"models": models}))
        runs = evaluate(settings, instance, ["base", "same", "worse"], ["arithmetic"], EvalScope(tiers=["easy", "medium"], precision=str(ITEMS_PER_POINT)))
        assert server.completion_requests == 3 * 400
    warehouse = Warehouse(settings.db_path)
    table = warehouse.query("SELECT * FROM comparisons WHERE kind = 'models'")
    tasks = {(r["model_a"], r["model_b"]): r for r in table.filter(pl.col("level") == "task").iter_rows(named=True)}
    assert set(tasks) == {("base", "same"), ("base", "worse"), ("same", "worse")}

    identical = tasks[("base", "same")]
    assert (identical["pairs"], identical["b"], identical["c"], identical["p_value"], identical["q_value"]) == (400, 0, 0, 1.0, 1.0)
    assert identical["accuracy_a"] == identical["accuracy_b"] and not identical["differs"]

    for pair in (("base", "worse"), ("same", "worse")):
        drop = tasks[pair]
        assert (drop["pairs"], drop["excluded"], drop["b"], drop["c"]) == (400, 0, 40, 0)
        assert drop["accuracy_a"] - drop["accuracy_b"] == pytest.approx(0.10)
        assert drop["p_value"] == pytest.approx(2 * 0.5**40) and drop["q_value"] < 1e-10
        assert drop["differs"] and drop["worse"]
        # Each point alone has 4 discordant pairs, and 4 can never be significant (exact p >= 2/2^4):
        # the pooled task test is what detects a drop spread thin over the grid.
        points = table.filter((pl.col("level") == "point") & (pl.col("model_a") == pair[0]) & (pl.col("model_b") == pair[1]))
        assert points.height == 10 and (points["b"] == 4).all() and (points["c"] == 0).all()
        assert points["p_value"].to_list() == pytest.approx([0.125] * 10) and not points["differs"].any()
    assert table.filter(pl.col("model_b") == "same")["b"].sum() == 0 and table.filter(pl.col("model_b") == "same")["c"].sum() == 0
    assert table.filter((pl.col("model_a") == "base") & (pl.col("model_b") == "same"))["p_value"].to_list() == [1.0] * 11

    # Nothing changed version: no model has a previous version, and the gate passes.
    assert warehouse.query("SELECT count(*) AS n FROM comparisons WHERE kind = 'versions'")["n"][0] == 0
    gate = _gate(instance, runs.run_ids[-1])
    assert gate.passed and gate.severity == dg.AssetCheckSeverity.WARN
    page = "".join(p.read_text() for p in (settings.report_dir / "data").glob("*.js"))
    assert "Paired comparison on shared items" in page and "base vs worse" in page and "same vs worse" in page

    # The CLI, as a user runs it: the comparison, and a clear error (exit code 2) for an unknown model.
    env = lab_env(settings)
    shown = rs_process(["compare", "base", "worse", "--tasks", "arithmetic"], env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    unknown = rs_process(["compare", "base", "nope"], env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = shown.communicate(timeout=120)
    assert shown.returncode == 0, err[-3000:]
    line = next(line for line in out.splitlines() if "arithmetic" in line and "400" in line)
    worse = tasks[("base", "worse")]
    assert line.split("│")[1:-1] and [c.strip() for c in line.split("│")[1:-1]][:7] == [
        "arithmetic", "400", "0", f"{worse['accuracy_a']:.3f}", f"{worse['accuracy_b']:.3f}", "40", "0"
    ]
    assert "1.8e-12" in line and "B worse" in line
    assert "No grid point differs after Benjamini–Hochberg at q <= 0.05 (10 points compared)" in out
    out, err = unknown.communicate(timeout=120)
    assert unknown.returncode == 2 and "unknown model 'nope'; known models: base, same, worse" in err and "Traceback" not in err


def test_the_regression_gate_warns_when_a_new_model_version_answers_worse_on_the_same_items(tmp_path, instance):
    """One model, three versions on the same 80 items: its template changes twice (each change is a new
    model_version, and new prompts, so new requests); the gate compares each version with the one before."""
    settings = make_lab(tmp_path / "lab", {}, tasks=("arithmetic",))
    responder = TwoKindsOfModel(settings, ("easy",))
    scope = EvalScope(tiers=["easy"], precision=str(ITEMS_PER_POINT))
    warehouse = Warehouse(settings.db_path)

    with ScriptedServer(responder) as server:
        def evaluate_with(template: str) -> tuple[str, str]:
            entry = {"base_url": server.base_url, "served_model": "base", "template": template, "sampler": "greedy", "concurrency": 16}
            (settings.inputs / "models.yaml").write_text(yaml.safe_dump({"models": {"gated": entry}}))
            runs = evaluate(settings, instance, ["gated"], ["arithmetic"], scope)
            return load_models(settings)["gated"].version, runs.run_ids[-1]

        first, run = evaluate_with("zero_shot")
        gate = _gate(instance, run)
        assert gate.passed and "nothing to compare" in gate.description
        page = "".join(p.read_text() for p in (settings.report_dir / "data").glob("*.js"))
        assert "Nothing to compare: only one model (gated) has results" in page

        # A template that answers exactly as before: a previous version exists, nothing differs.
        second, run = evaluate_with("zero_shot_system")
        assert second != first and server.completion_requests == 2 * 80
        gate = _gate(instance, run)
        assert gate.passed and gate.severity == dg.AssetCheckSeverity.WARN and "No model's current version" in gate.description
        versions = warehouse.query("SELECT * FROM comparisons WHERE kind = 'versions' AND level = 'task'")
        assert versions.select("version_a", "version_b", "pairs", "b", "c", "p_value").rows() == [(first, second, 80, 0, 0, 1.0)]

        # A template under which 8 of the 80 items the model got right come out wrong.
        third, run = evaluate_with("cot")
        gate = _gate(instance, run)
        assert not gate.passed and gate.severity == dg.AssetCheckSeverity.WARN
        assert "gated" in gate.description and gate.metadata["regressions"].value == 1
    versions = warehouse.query("SELECT * FROM comparisons WHERE kind = 'versions' ORDER BY level DESC, params_json")
    task = versions.row(0, named=True)
    # The previous version is the one scored last before the current (zero_shot_system), not the first.
    assert (task["version_a"], task["version_b"], task["pairs"], task["b"], task["c"]) == (second, third, 80, 8, 0)
    assert task["p_value"] == pytest.approx(2 / 2**8)
    assert task["q_value"] == pytest.approx(3 * 2 / 2**8)  # BH over the task test and its two points (p = 0.125 each)
    assert task["worse"] and math.isclose(task["accuracy_a"] - task["accuracy_b"], 0.1)
    assert versions.filter(pl.col("level") == "point")["worse"].to_list() == [False, False]
    # The results of every version stay queryable, as the comparison needs.
    kept = warehouse.query("SELECT model_version, count(*) AS n FROM scored_results GROUP BY ALL")
    assert sorted(kept["model_version"].to_list()) == sorted([first, second, third]) and kept["n"].to_list() == [80, 80, 80]


def test_the_regression_gate_sees_a_new_served_model(tmp_path, instance):
    settings = make_lab(tmp_path / "lab", {}, tasks=("arithmetic",))
    responder = TwoKindsOfModel(settings, ("easy",))
    warehouse = Warehouse(settings.db_path)
    with ScriptedServer(responder) as server:
        for served in ("base", "worse"):
            entry = {"base_url": server.base_url, "served_model": served, "sampler": "greedy", "concurrency": 16}
            (settings.inputs / "models.yaml").write_text(yaml.safe_dump({"models": {"gated": entry}}))
            runs = evaluate(settings, instance, ["gated"], ["arithmetic"], EvalScope(tiers=["easy"], precision=str(ITEMS_PER_POINT)))
    assert warehouse.query("SELECT count(DISTINCT model_version) AS n FROM scored_results")["n"][0] == 2
    assert not _gate(instance, runs.run_ids[-1]).passed
