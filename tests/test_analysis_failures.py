"""An analysis that fails never blocks what was measured: the answers, scores and points are stored, the
report is refreshed from what is there, the failure is one message, and the next evaluation retries it."""

import pytest
from helpers import Oracle, make_lab, scripted_model

import rs_dagster.defs.reasonscore
import rs_dagster.defs.traces
from rs_dagster.defs.resources import EvalScope
from rs_dagster.errors import RsError
from rs_dagster.freshness import lab_status
from rs_dagster.models.registry import load_models
from rs_dagster.orchestrate import evaluate
from rs_dagster.prompting.scope import evaluation_pairs
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import load_manifolds
from rs_dagster.testing.scripted_server import ScriptedServer

SCOPE = EvalScope(tiers=["easy"], precision="4")


def _fails(*_, **__):
    raise OverflowError("math range error")


def _status(settings):
    pairs = evaluation_pairs(load_manifolds(settings.tasks_dir), load_models(settings), ["alpha"], ["boolean"], SCOPE)
    return lab_status(settings, pairs, SCOPE)


def test_a_failing_analysis_leaves_the_measured_tables_and_the_report_refreshed(tmp_path, instance, monkeypatch):
    with ScriptedServer(Oracle(make_lab(tmp_path / "probe", {}), items_per_point=4)) as server:
        settings = make_lab(tmp_path / "lab", {"alpha": scripted_model(server.base_url)})
        monkeypatch.setattr(rs_dagster.defs.traces, "survival_frames", _fails)  # the hazard step fails
        with pytest.raises(RsError, match=r"(?s)hazard failed for partition alpha\|boolean: .*OverflowError.*scores and points are stored"):
            evaluate(settings, instance, ["alpha"], ["boolean"], SCOPE)
        warehouse = Warehouse(settings.db_path)
        assert warehouse.count_rows("points", {"model": "alpha"}) > 0
        assert warehouse.count_rows("leaderboard", {"model": "alpha"}) > 0  # the report was refreshed over them
        assert (settings.report_dir / "index.html").is_file() and not warehouse.has_table("hazard")
        assert any("evaluation never completed" in why for why in _status(settings).pairs[0].stale)

        monkeypatch.undo()
        sent = server.completion_requests
        evaluate(settings, instance, ["alpha"], ["boolean"], SCOPE)  # retried; nothing asked again
        assert server.completion_requests == sent and warehouse.count_rows("hazard", {"model": "alpha"}) > 0
        assert _status(settings).current


def test_a_failing_report_table_still_writes_the_report(tmp_path, instance, monkeypatch):
    with ScriptedServer(Oracle(make_lab(tmp_path / "probe", {}), items_per_point=4)) as server:
        settings = make_lab(tmp_path / "lab", {"alpha": scripted_model(server.base_url)})
        monkeypatch.setattr(rs_dagster.defs.reasonscore, "reasonscores", _fails)
        with pytest.raises(RsError, match=r"reasonscore failed"):
            evaluate(settings, instance, ["alpha"], ["boolean"], SCOPE)
        warehouse = Warehouse(settings.db_path)
        assert (settings.report_dir / "index.html").is_file() and warehouse.count_rows("leaderboard") > 0
        assert not warehouse.has_table("reasonscore")
        assert _status(settings).report  # stale: the next run refreshes it
        monkeypatch.undo()
        evaluate(settings, instance, ["alpha"], ["boolean"], SCOPE)
        assert warehouse.has_table("reasonscore") and _status(settings).current
