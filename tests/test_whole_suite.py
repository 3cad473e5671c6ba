"""Every task of the suite through the whole pipeline: real prompts over real HTTP, answers parsed and
scored by each task's own parser, points and leaderboard for all thirteen."""

from helpers import Oracle, make_lab, scripted_model

from rs_dagster.defs.resources import EvalScope
from rs_dagster.orchestrate import evaluate
from rs_dagster.settings import PACKAGE_ROOT
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

ALL_TASKS = tuple(sorted(path.stem for path in (PACKAGE_ROOT / "assets" / "tasks").glob("*.yaml")))


def test_the_suite_has_thirteen_tasks():
    assert len(ALL_TASKS) == 13


def test_every_task_is_evaluated_end_to_end(tmp_path, instance):
    """The model states the true answer after some reasoning for even item indices and declines to
    answer odd ones: every task scores exactly 0.5, with declined samples unparsed, never errors."""
    oracle = Oracle(make_lab(tmp_path / "probe", {}, tasks=ALL_TASKS), items_per_point=4)

    def respond(body):
        known = oracle.lookup(body)
        if known.index % 2:
            return Reply(content="I am not able to work this out.")
        return Reply(content=f"Let me reason about it step by step; first 12, then 7.\n\n**ANSWER:** {known.answer}")

    with ScriptedServer(respond) as server:
        lab = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url)}, tasks=ALL_TASKS)
        evaluate(lab, instance, ["scripted"], list(ALL_TASKS), EvalScope(tiers=["easy"], precision="4"))
    warehouse = Warehouse(lab.db_path)
    board = warehouse.query("SELECT task, samples, accuracy, errors FROM leaderboard WHERE tier = 'easy' ORDER BY task")
    assert tuple(board["task"]) == ALL_TASKS
    assert (board["samples"] >= 4).all() and (board["errors"] == 0).all()
    assert board["accuracy"].to_list() == [0.5] * len(ALL_TASKS), board
    outcomes = warehouse.query("SELECT outcome, count(*) AS n FROM scored_results GROUP BY ALL ORDER BY ALL")
    assert outcomes["outcome"].to_list() == ["correct", "unparsed"] and outcomes["n"][0] == outcomes["n"][1]
