"""Editing one task manifold (or one model entry) re-runs only that task's (or model's) downstream
partitions: data versions on task_specs/model_specs drive the automation conditions."""

import json

import dagster as dg
import pytest
import yaml
from helpers import Oracle, make_lab, scripted_model

from rs_dagster.definitions import build_definitions
from rs_dagster.defs.automation import EVALUATION_ASSETS
from rs_dagster.defs.partitions import register_partitions
from rs_dagster.defs.resources import EvalScope
from rs_dagster.errors import RsError
from rs_dagster.freshness import lab_status
from rs_dagster.models.registry import load_models
from rs_dagster.orchestrate import evaluate
from rs_dagster.prompting.scope import evaluation_pairs
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import load_manifolds
from rs_dagster.tasks.selection import PointSelection, select_points
from rs_dagster.testing.scripted_server import Reply, ScriptedServer


def _requested(result: dg.EvaluateAutomationConditionsResult) -> dict[str, set[str]]:
    requested = {}
    for asset in [*EVALUATION_ASSETS, "test_cases"]:
        keys = result.get_requested_partitions(dg.AssetKey(asset))
        if keys:
            requested[asset] = {str(k) for k in keys}
    return requested


def _refresh_definitions(settings, instance) -> dg.Definitions:
    """What the `edited_inputs` sensor (or `rs eval`) does: re-materialize every task_specs and
    model_specs partition. Unchanged inputs keep their data version."""
    defs = build_definitions(settings, EvalScope(tiers=["easy"], precision="4"))
    assets = list(defs.assets)
    register_partitions(instance, load_models(settings), load_manifolds(settings.tasks_dir))  # as the sensor adds them
    for task in load_manifolds(settings.tasks_dir):
        assert dg.materialize(assets, selection=["task_specs"], partition_key=task, instance=instance, resources=defs.resources).success
    for model in load_models(settings):
        assert dg.materialize(assets, selection=["model_specs"], partition_key=model, instance=instance, resources=defs.resources).success
    return defs


def test_editing_one_task_or_one_model_requests_only_its_partitions(tmp_path, instance):
    probe = make_lab(tmp_path / "probe", {})
    with ScriptedServer(Oracle(probe, items_per_point=4)) as server:
        models = {"alpha": scripted_model(server.base_url), "beta": scripted_model(server.base_url)}
        settings = make_lab(tmp_path / "lab", models)
        evaluate(settings, instance, ["alpha", "beta"], ["arithmetic", "boolean"], EvalScope(tiers=["easy"], precision="4"))

        defs = _refresh_definitions(settings, instance)
        baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert _requested(baseline) == {}, "nothing changed, nothing may be requested"

        # Nothing edited: a second refresh must not request anything either.
        defs = _refresh_definitions(settings, instance)
        unchanged = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=baseline.cursor)
        assert _requested(unchanged) == {}

        # Edit one task file.
        path = settings.tasks_dir / "boolean.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["fixed"]["negation_rate"] = 0.4
        path.write_text(yaml.safe_dump(doc))
        defs = _refresh_definitions(settings, instance)
        after_task_edit = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=unchanged.cursor)
        assert _requested(after_task_edit) == {"test_cases": {"boolean"}}

        # The requested run regenerates boolean's items; their new data version reaches the model × task partitions.
        assert dg.materialize(list(defs.assets), selection=["test_cases"], partition_key="boolean", instance=instance, resources=defs.resources).success
        next_tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after_task_edit.cursor)
        requested = _requested(next_tick)
        assert set(requested) == set(EVALUATION_ASSETS)
        for asset in EVALUATION_ASSETS:
            assert requested[asset] == {"alpha|boolean", "beta|boolean"}, asset

        # Run what was requested, then edit one model entry.
        evaluate(settings, instance, ["alpha", "beta"], ["boolean"], EvalScope(tiers=["easy"], precision="4"))
        defs = _refresh_definitions(settings, instance)
        settled = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=next_tick.cursor)
        assert _requested(settled) == {}
        models["beta"]["template"] = "cot"
        (settings.models_file).write_text(yaml.safe_dump({"models": models}))
        defs = _refresh_definitions(settings, instance)
        after_model_edit = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
        requested = _requested(after_model_edit)
        assert set(requested) == set(EVALUATION_ASSETS)
        for asset in EVALUATION_ASSETS:
            assert requested[asset] == {"beta|arithmetic", "beta|boolean"}, asset


def test_operational_settings_do_not_change_a_model_version(tmp_path):
    settings = make_lab(tmp_path, {"m": scripted_model("http://127.0.0.1:9/v1")})
    before = load_models(settings)["m"].version
    (settings.models_file).write_text(yaml.safe_dump({"models": {"m": scripted_model("http://127.0.0.1:9/v1", concurrency=64, timeout_s=5)}}))
    assert load_models(settings)["m"].version == before
    (settings.models_file).write_text(yaml.safe_dump({"models": {"m": scripted_model("http://127.0.0.1:9/v1", sampler="demo")}}))
    assert load_models(settings)["m"].version != before


REPORT_ASSETS = ["surfaces", "projections", "leaderboard", "report"]


def test_automation_refreshes_only_what_was_evaluated_at_its_scope_then_the_report(tmp_path, instance):
    """A lab with one evaluated model and one registered whose one run failed (its server is down):
    turning automation on requests nothing; a task edit re-runs only the evaluated partition, at the
    scopes it was evaluated at (not the suite's defaults), then every table over all partitions."""
    with ScriptedServer(lambda body: Reply(content="ANSWER: True")) as server:
        models = {"alpha": scripted_model(server.base_url), "idle": scripted_model("http://127.0.0.1:9/v1")}
        settings = make_lab(tmp_path / "lab", models)
        evaluate(settings, instance, ["alpha"], ["boolean"], EvalScope(tiers=["easy"], precision="8"))
        evaluate(settings, instance, ["alpha"], ["boolean"], EvalScope(projections=["length"], precision="4"))
        sent = server.completion_requests
        # A run of the model whose server is down fails after its prompts, and records nothing that makes
        # automation want that partition (before: its scope, and every later edit requested it again).
        with pytest.raises(RsError, match="connection refused"):
            evaluate(settings, instance, ["idle"], ["boolean"], EvalScope(tiers=["easy"], precision="8"))
        assert Warehouse(settings.db_path).count_rows("evaluated_scopes", {"model": "idle"}) == 0

        defs = _refresh_definitions(settings, instance)
        enabled = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert _requested(enabled) == {}
        settled = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=enabled.cursor)
        assert _requested(settled) == {} and settled.total_requested == 0

        path = settings.tasks_dir / "boolean.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["fixed"]["negation_rate"] = 0.4
        path.write_text(yaml.safe_dump(doc))
        defs = _refresh_definitions(settings, instance)
        edited = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
        assert _requested(edited) == {"test_cases": {"boolean"}}
        assert dg.materialize(list(defs.assets), selection=["test_cases"], partition_key="boolean", instance=instance, resources=defs.resources).success
        evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=edited.cursor)
        assert _requested(evaluation) == {asset: {"alpha|boolean"} for asset in EVALUATION_ASSETS}

        # The automation run carries no scope of its own: it replays the two evaluated ones.
        replay = build_definitions(settings)
        assert dg.materialize(list(replay.assets), selection=EVALUATION_ASSETS, partition_key="alpha|boolean", instance=instance, resources=replay.resources).success
        points = Warehouse(settings.db_path).query("SELECT n, tiers, projections FROM points ORDER BY ALL")
        assert points.height == 2 + 5 - 1  # easy ∪ the length projection, sharing (3, 1, true_false)
        assert sorted(points["n"].to_list()) == [4] * 4 + [8] * 2
        # The new version's items and nothing more (an item whose question the edit left alone reuses its stored answer).
        assert 0 < server.completion_requests - sent <= 4 * 4 + 8 * 2

        report = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=evaluation.cursor)
        assert {a for a in REPORT_ASSETS if report.get_num_requested(dg.AssetKey(a))} == set(REPORT_ASSETS)


def test_rs_eval_refreshes_only_definitions_that_changed_since_their_last_refresh(tmp_path, instance):
    """A task or model whose last refresh wrote the rows a refresh would write now (and succeeded) is not
    refreshed again by the next evaluation: fewer runs, the same tables."""
    scope = EvalScope(tiers=["easy"], precision="4")
    with ScriptedServer(Oracle(make_lab(tmp_path / "probe", {}), items_per_point=4)) as server, ScriptedServer(lambda body: Reply("ANSWER: 1")) as other:
        settings = make_lab(tmp_path / "lab", {"alpha": scripted_model(server.base_url)})

        def jobs() -> list[str]:
            runs = evaluate(settings, instance, ["alpha"], ["arithmetic", "boolean"], scope)
            return sorted(instance.get_run_by_id(run_id).job_name for run_id in runs.run_ids)  # type: ignore[union-attr]

        assert jobs() == ["evaluation", "evaluation", "refresh_models", "refresh_report", "refresh_tasks", "refresh_tasks"]
        stored = Warehouse(settings.db_path).table("test_cases")
        assert jobs() == ["evaluation", "evaluation", "refresh_report"]
        assert Warehouse(settings.db_path).table("test_cases").equals(stored)

        path = settings.tasks_dir / "boolean.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["fixed"]["negation_rate"] = 0.4
        path.write_text(yaml.safe_dump(doc))
        assert jobs() == ["evaluation", "evaluation", "refresh_report", "refresh_tasks"]

        (settings.inputs / "models.yaml").write_text(yaml.safe_dump({"models": {"alpha": scripted_model(other.base_url)}}))
        assert jobs() == ["evaluation", "evaluation", "refresh_models", "refresh_report"]
        assert Warehouse(settings.db_path).table("model_specs")["base_url"].to_list() == [other.base_url]


def test_rs_eval_generates_only_the_items_its_scope_needs_and_the_ui_every_named_point(tmp_path, instance):
    """A first evaluation of a small scope generates its points' items, not the whole manifold at its largest
    level (the scopes travel in the refresh run's config, so the UI re-executes the same generation); a wider
    evaluation generates what it adds; the leaderboard still measures each tier against all of its points."""
    with ScriptedServer(lambda body: Reply("ANSWER: 1")) as server:
        settings = make_lab(tmp_path / "lab", {"alpha": scripted_model(server.base_url)})
        spec = load_manifolds(settings.tasks_dir)["boolean"]
        easy, medium = ({p.point_id for p in select_points(spec, PointSelection(tiers=(tier,)))} for tier in ("easy", "medium"))
        warehouse = Warehouse(settings.db_path)

        def items_per_point() -> dict[str, int]:
            return dict(warehouse.query("SELECT point_id, count(*) FROM test_cases GROUP BY point_id").iter_rows())

        runs = evaluate(settings, instance, ["alpha"], ["boolean"], EvalScope(tiers=["easy"], precision="4"))
        assert items_per_point() == dict.fromkeys(easy, 4)
        refresh = next(r for r in map(instance.get_run_by_id, runs.run_ids) if r is not None and r.job_name == "refresh_tasks")
        scopes = refresh.run_config["ops"]["test_cases"]["config"]["scopes"]
        assert [json.loads(s)["tiers"] for s in scopes] == [["easy"]] and json.loads(scopes[0])["precision"] == 4
        board = warehouse.query("SELECT tier, points, tier_points FROM leaderboard")
        assert board.rows() == [("easy", len(easy), spec.tier_sizes()["easy"])]

        evaluate(settings, instance, ["alpha"], ["boolean"], EvalScope(tiers=["easy", "medium"], precision="8"))
        assert items_per_point() == dict.fromkeys(easy | medium, 8)
        board = warehouse.query("SELECT tier, points, tier_points FROM leaderboard ORDER BY tier")
        assert board.rows() == [("easy", len(easy), spec.tier_sizes()["easy"]), ("medium", len(medium), spec.tier_sizes()["medium"])]

        defs = build_definitions(settings)
        assert dg.materialize(list(defs.assets), selection=["test_cases"], partition_key="boolean", instance=instance, resources=defs.resources).success
        assert items_per_point() == dict.fromkeys((p.point_id for p in spec.points()), spec.max_items_per_point)


def test_rs_eval_recognizes_an_evaluation_that_would_change_nothing(tmp_path, instance):
    """Current: every answer the scope needs stored at the current versions, no error stored, and the
    derived tables and the report as their runs left them. Any difference means the evaluation runs."""
    scope = EvalScope(tiers=["easy"], precision="4")
    oracle = Oracle(make_lab(tmp_path / "probe", {}), items_per_point=4)
    refused = iter(range(10_000))

    def flaky(body):  # every 5th request refused for good (400 is not retried): an error row
        return Reply(status=400, content="bad request") if next(refused) % 5 == 0 else oracle(body)

    with ScriptedServer(oracle) as server, ScriptedServer(flaky) as failing:
        settings = make_lab(tmp_path / "lab", {"alpha": scripted_model(server.base_url), "beta": scripted_model(failing.base_url)})

        def status(models=("alpha",), at=scope):
            pairs = evaluation_pairs(load_manifolds(settings.tasks_dir), load_models(settings), list(models), ["arithmetic", "boolean"], at)
            return lab_status(settings, pairs, at)

        assert [p.stale for p in status().pairs] == [["never evaluated here"]] * 2  # never evaluated
        evaluate(settings, instance, ["alpha"], ["arithmetic", "boolean"], scope)
        assert status().current
        other = status(at=EvalScope(tiers=["easy"], precision="8"))  # another scope
        assert not other.current and all("tiers easy at 8 never completed" in p.stale[0] for p in other.pairs)
        assert all(p.requests > 0 for p in other.pairs)

        evaluate(settings, instance, ["beta"], ["arithmetic", "boolean"], scope)
        assert Warehouse(settings.db_path).query("SELECT count(*) AS n FROM completions WHERE model = 'beta' AND error IS NOT NULL")["n"][0] > 0
        beta = status(("beta",))
        assert not beta.current and any("error completions to ask again" in why for p in beta.pairs for why in p.stale)
        assert status().current  # alpha's results, and the report refreshed after beta, are current

        path = settings.tasks_dir / "boolean.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["fixed"]["negation_rate"] = 0.4
        path.write_text(yaml.safe_dump(doc))
        edited = status()
        assert edited.pairs[0].current and not edited.pairs[1].current  # a task edited since: only its pair
