"""The whole spine over real HTTP: scripted loopback server → openai client → Dagster assets → DuckDB."""

import json

import dagster as dg
import polars as pl
import pytest
from helpers import Oracle, make_lab, scripted_model, true_accuracy

from rs_dagster.definitions import build_definitions
from rs_dagster.defs.resources import EvalScope
from rs_dagster.orchestrate import evaluate
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

TABLES = ["task_specs", "test_cases", "model_specs", "prompts", "completions", "scored_results", "points", "surfaces", "projections", "leaderboard"]


@pytest.fixture
def scripted_lab(tmp_path):
    probe = make_lab(tmp_path / "probe", {})
    oracle = Oracle(probe, items_per_point=48)
    with ScriptedServer(oracle) as server:
        settings = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url)})
        yield settings, server, oracle


def test_measured_accuracy_matches_the_known_truth(scripted_lab, instance):
    settings, server, oracle = scripted_lab
    evaluate(settings, instance, ["scripted"], ["arithmetic", "boolean"], EvalScope(tiers=["easy", "medium"], precision="48"))
    warehouse = Warehouse(settings.db_path)
    points = warehouse.query("SELECT * FROM points")
    assert points.height == 2 + 8 + 2 + 12  # easy and medium points of both tasks
    for row in points.iter_rows(named=True):
        params = json.loads(row["params_json"])
        truth = true_accuracy(row["task"], params)
        assert row["n"] == 48 and row["answered"] == 48 and row["errors"] == 0
        assert row["flexible_ci_low"] <= truth <= row["flexible_ci_high"], (row["params_json"], row["flexible_accuracy"], truth)
        assert abs(row["flexible_accuracy"] - truth) <= 0.1
        # Strict: one reply style in four gives the bare value as its last line, outside the requested form.
        known = [k for k in oracle.known.values() if k.task == row["task"] and k.params == params and k.index < 48]
        assert row["correct"] == sum(oracle.is_correct(k) and not oracle.bare_last_line(k) for k in known)
        assert row["format_compliance"] == 36 / 48
    assert server.completion_requests == points["n"].sum()

    scored = warehouse.query("SELECT * FROM scored_results")
    assert set(scored["parse_rule"]) == {"answer_line", "boxed", "last_line"}
    assert set(scored["flexible_outcome"]) == {"correct", "incorrect"}
    assert set(scored.filter(pl.col("parse_rule") == "last_line")["outcome"]) == {"unparsed"}
    board = warehouse.query("SELECT * FROM leaderboard ORDER BY task, tier")
    assert board.select("task", "tier").rows() == [("arithmetic", "easy"), ("arithmetic", "medium"), ("boolean", "easy"), ("boolean", "medium")]
    assert (board["ci_low"] <= board["accuracy"]).all() and (board["accuracy"] <= board["ci_high"]).all()
    assert (board["accuracy"] < board["flexible_accuracy"]).all() and (board["format_compliance"] == 0.75).all()
    assert "".join(p.read_text() for p in (settings.report_dir / "data").glob("*.js")).count('"type":"chart"') >= 3  # the exported report's charts


def test_every_scored_row_links_back_to_its_inputs(scripted_lab, instance):
    settings, _server, _ = scripted_lab
    evaluate(settings, instance, ["scripted"], ["boolean"], EvalScope(tiers=["easy"], precision="8"))
    lineage = Warehouse(settings.db_path).query(
        """
        SELECT s.*, c.answer_text, c.dagster_run_id AS completion_run, p.messages_json, t.question, t.seed, ts.spec_version AS spec
        FROM scored_results s
        JOIN completions c USING (model, task, test_case_id, sample_index, request_hash, prompt_hash)
        JOIN prompts p USING (model, task, test_case_id, prompt_hash)
        JOIN test_cases t USING (task, test_case_id)
        JOIN task_specs ts ON ts.task = s.task AND ts.spec_version = s.spec_version
        """
    )
    assert lineage.height == 16
    for row in lineage.iter_rows(named=True):
        assert row["question"] in json.loads(row["messages_json"])[-1]["content"]
        assert row["dagster_run_id"] == row["completion_run"]
        assert instance.get_run_by_id(row["dagster_run_id"]) is not None
    assert lineage["model_version"].n_unique() == 1 and lineage["generator_version"].to_list() == ["1"] * 16


def test_a_rerun_makes_zero_requests_and_reproduces_every_table(scripted_lab, instance):
    """Stored answers are not asked again and their rows are not rewritten: every table is identical
    after the second run, run ids included (only task_specs records the run that re-read the manifold)."""
    settings, server, _ = scripted_lab
    scope = EvalScope(tiers=["easy"], precision="16")
    evaluate(settings, instance, ["scripted"], None, scope)
    warehouse = Warehouse(settings.db_path)

    def table(name: str):
        query = f"SELECT * EXCLUDE (dagster_run_id) FROM {name}" if name == "task_specs" else f"SELECT * FROM {name}"
        columns = warehouse.query(f"SELECT * FROM {name} LIMIT 0").columns
        key = [c for c in ("task", "model", "test_case_id", "request_hash", "point_id", "tier", "surface", "x", "y") if c in columns]
        return warehouse.query(query).sort(key)

    first = {name: table(name) for name in TABLES}
    sent = server.completion_requests
    evaluate(settings, instance, ["scripted"], None, scope)
    assert server.completion_requests == sent
    for name, before in first.items():
        assert before.equals(table(name)), name
    assert not first["completions"]["from_cache"].any()


def test_truncation_is_an_outcome_not_a_wrong_answer(tmp_path, instance):
    probe = make_lab(tmp_path / "probe", {})
    oracle = Oracle(probe, items_per_point=16)

    def respond(body):
        known = oracle.lookup(body)
        reply = oracle(body)
        if known.index % 4 == 3:
            reply.content, reply.finish_reason = "Let me think about 3 and 4 and", "length"
        return reply

    with ScriptedServer(respond) as server:
        settings = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url)})
        evaluate(settings, instance, ["scripted"], ["arithmetic"], EvalScope(tiers=["easy"], precision="16"))
    points = Warehouse(settings.db_path).query("SELECT * FROM points")
    assert points["truncated"].to_list() == [4, 4]
    assert points["truncation_rate"].to_list() == [0.25, 0.25]
    assert (points["answered"] == 12).all()


def test_a_thinking_budget_shows_which_answers_it_forced(tmp_path, instance):
    """A reasoning model under `reasoning_budget`: items it finishes thinking within the budget answer
    in one phase; the others are cut off, their thought closed, and go on to their answer in the same
    assistant turn, counted per point as forced."""
    oracle = Oracle(make_lab(tmp_path / "probe", {}), items_per_point=8)

    def respond(body):
        if body.get("continue_final_message"):
            assert body["messages"][-1]["content"].endswith("</think>\n\n") and body["add_generation_prompt"] is False
            return oracle({"messages": body["messages"][:-1]})
        assert body["max_tokens"] == 2048 and body["top_k"] == 20  # the budget, and extra_body merged in
        known = oracle.lookup(body)
        if known.index % 2:  # still thinking when the budget runs out
            return Reply(content="<think>Let me carefully consider each operator in turn", finish_reason="length", completion_tokens=2048)
        reply = oracle(body)
        reply.content = f"<think>short and sure</think>{reply.content}"
        return reply

    with ScriptedServer(respond) as server:
        settings = make_lab(tmp_path / "lab", {"thinker": scripted_model(server.base_url, sampler="reasoning_budget")})
        evaluate(settings, instance, ["thinker"], ["boolean"], EvalScope(tiers=["easy"], precision="8"))
        assert server.completion_requests == 16 + 8  # every item once, the cut-off half twice
    warehouse = Warehouse(settings.db_path)
    phases = warehouse.query("SELECT answer_phase, count(*) AS n, min(reasoning_text) AS r FROM completions GROUP BY ALL ORDER BY ALL")
    assert phases.rows() == [("budget_forced", 8, "Let me carefully consider each operator in turn"), ("single", 8, "short and sure")]
    points = warehouse.query("SELECT budget_forced, truncated, answered FROM points")
    assert points.rows() == [(4, 0, 8), (4, 0, 8)]
    forced = warehouse.query("SELECT flexible_outcome FROM scored_results WHERE answer_phase = 'budget_forced'")["flexible_outcome"]
    assert forced.is_in(["correct", "incorrect"]).all()


def test_a_hedged_answer_is_ambiguous_in_every_table(tmp_path, instance):
    """A model that answers one item in four with two candidates ("ANSWER: 12 or 19"): those samples are
    `ambiguous`, strict and flexible, answered and never correct, in scored_results, points, the leaderboard,
    hazard and compression, and the ambiguous_share check warns."""
    oracle = Oracle(make_lab(tmp_path / "probe", {}), items_per_point=16)

    def hedged(known) -> bool:
        return known.index % 4 == 2

    def respond(body):
        known = oracle.lookup(body)
        if hedged(known):
            return Reply(content=f"It is one of two.\n\nANSWER: {known.answer} or {int(known.answer) + 7}")
        return oracle(body)

    scope = EvalScope(tiers=["easy"], precision="16")
    with ScriptedServer(respond) as server:
        settings = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url)})
        evaluate(settings, instance, ["scripted"], ["arithmetic"], scope)
    warehouse = Warehouse(settings.db_path)
    scored = warehouse.query("SELECT * FROM scored_results")
    ambiguous = scored.filter(pl.col("outcome") == "ambiguous")
    assert ambiguous.height == 8 and set(ambiguous["flexible_outcome"]) == {"ambiguous"}
    points = warehouse.query("SELECT * FROM points ORDER BY point_id")
    for row in points.iter_rows(named=True):
        params = json.loads(row["params_json"])
        known = [k for k in oracle.known.values() if k.task == "arithmetic" and k.params == params and k.index < 16]
        assert (row["n"], row["answered"], row["ambiguous"]) == (16, 16, 4)
        assert row["correct"] == sum(oracle.is_correct(k) and not oracle.bare_last_line(k) and not hedged(k) for k in known)
        assert row["accuracy"] == row["correct"] / 16  # hedges stay in the denominator
        assert row["format_compliance"] == (row["correct"] + row["incorrect"]) / 16
    board = warehouse.query("SELECT * FROM leaderboard").row(0, named=True)
    assert (board["ambiguous"], board["ambiguous_share"], board["answered"]) == (8, 0.25, 32)
    hazard = warehouse.query("SELECT * FROM hazard WHERE tier = 'all'")
    assert hazard["ambiguous"].sum() == 8 and hazard["incidence_ambiguous"].max() == pytest.approx(0.25)
    assert "ambiguous" in set(warehouse.query("SELECT outcome FROM compression_points")["outcome"])
    defs = build_definitions(settings, scope)
    result = dg.materialize(list(defs.assets), selection=["scored_results"], partition_key="scripted|arithmetic", instance=instance,
                            resources=defs.resources)
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "ambiguous_share")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert (check.metadata["count"].value, check.metadata["of"].value, check.metadata["outcome/strict"].value) == (8, 32, 8)
