"""Results accumulate over real HTTP: a partition holds every sample collected for the current task and
model versions, whatever scope each evaluation had; nothing is removed by a narrower, repeated or
failed evaluation; rows of an earlier task version stay queryable but out of the current points."""

import json
import subprocess

import pytest
from helpers import Oracle, lab_env, make_lab, rs_process, scripted_model, true_accuracy

from rs_dagster.defs.resources import EvalScope
from rs_dagster.orchestrate import evaluate
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import load_manifolds
from rs_dagster.tasks.selection import PointSelection, full_grid, select_points
from rs_dagster.testing.scripted_server import Reply, ScriptedServer


@pytest.fixture
def lab(tmp_path):
    oracle = Oracle(make_lab(tmp_path / "probe", {}), items_per_point=32)
    with ScriptedServer(oracle) as server:
        yield make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url)}), server


def _counts(warehouse: Warehouse, table: str) -> int:
    return warehouse.query(f"SELECT count(*) AS n FROM {table}")["n"][0]


def test_easy_then_medium_keeps_and_analyses_the_union(lab, instance):
    settings, server = lab
    evaluate(settings, instance, ["scripted"], ["arithmetic"], EvalScope(tiers=["easy"], precision="8"))
    evaluate(settings, instance, ["scripted"], ["arithmetic"], EvalScope(tiers=["medium"], precision="8"))
    warehouse = Warehouse(settings.db_path)
    assert _counts(warehouse, "completions") == (2 + 8) * 8 == server.completion_requests
    points = warehouse.query("SELECT tiers, n FROM points")
    assert points.height == 10 and (points["n"] == 8).all()
    board = warehouse.query("SELECT tier, samples FROM leaderboard ORDER BY tier")
    assert board.rows() == [("easy", 16), ("medium", 64)]


def test_fewer_samples_later_keep_all_earlier_ones(lab, instance):
    settings, server = lab
    evaluate(settings, instance, ["scripted"], ["arithmetic"], EvalScope(tiers=["easy"], precision="32"))
    warehouse = Warehouse(settings.db_path)
    before = {t: warehouse.query(f"SELECT * FROM {t} ORDER BY ALL") for t in ("completions", "scored_results", "points")}
    evaluate(settings, instance, ["scripted"], ["arithmetic"], EvalScope(tiers=["easy"], precision="2"))
    assert server.completion_requests == 64  # the 2 per point were among the 32
    for table, rows in before.items():
        assert warehouse.query(f"SELECT * FROM {table} ORDER BY ALL").equals(rows), table
    assert warehouse.query("SELECT n FROM points")["n"].to_list() == [32, 32]


def test_an_edited_task_keeps_old_rows_out_of_the_new_points(lab, instance):
    settings, server = lab
    evaluate(settings, instance, ["scripted"], ["arithmetic"], EvalScope(tiers=["easy"], precision="8"))
    warehouse = Warehouse(settings.db_path)
    old_version = warehouse.query("SELECT DISTINCT spec_version FROM scored_results")["spec_version"].to_list()
    manifold = settings.tasks_dir / "arithmetic.yaml"
    # A new global seed: new items, new questions, a new task version.
    manifold.write_text(manifold.read_text().replace("global_seed: 1", "global_seed: 2"))
    new_version = load_manifolds(settings.tasks_dir)["arithmetic"].version
    assert [new_version] != old_version
    with ScriptedServer(lambda body: Reply(content="ANSWER: 0")) as other:
        settings_yaml = settings.inputs / "models.yaml"
        settings_yaml.write_text(settings_yaml.read_text().replace(server.base_url, other.base_url))
        evaluate(settings, instance, ["scripted"], ["arithmetic"], EvalScope(tiers=["easy"], precision="4"))
    by_version = warehouse.query("SELECT spec_version, count(*) AS n FROM scored_results GROUP BY ALL ORDER BY n")
    assert by_version.rows() == [(new_version, 8), (old_version[0], 16)]  # both kept, queryable by version
    assert _counts(warehouse, "completions") == 16 + 8
    points = warehouse.query("SELECT n, correct FROM points")
    assert points["n"].to_list() == [4, 4]  # only the new version's samples
    assert warehouse.query("SELECT DISTINCT spec_version FROM test_cases ORDER BY ALL")["spec_version"].to_list() == sorted([*old_version, new_version])


def test_a_surface_and_a_projection_fill_every_cell(lab, instance):
    settings, server = lab
    spec = load_manifolds(settings.tasks_dir)["arithmetic"]
    evaluate(settings, instance, ["scripted"], ["arithmetic"], EvalScope(surfaces=["terms_by_depth"], projections=["whitespace"], precision="4"))
    warehouse = Warehouse(settings.db_path)
    cells = warehouse.query("SELECT x, y, n FROM surfaces WHERE surface = 'terms_by_depth'")
    expected = select_points(spec, PointSelection(surfaces=("terms_by_depth",)))
    assert cells.height == len(expected) == 16 and (cells["n"] == 4).all()
    assert set(zip(cells["x"], cells["y"])) == {(str(p.params["terms"]), str(p.params["depth"])) for p in expected}
    projection = warehouse.query("SELECT params_json FROM points WHERE list_contains(projections, 'whitespace')")
    assert sorted(json.loads(p)["whitespace_removed"] for p in projection["params_json"]) == [0.0, 0.5, 1.0]
    union = select_points(spec, PointSelection(surfaces=("terms_by_depth",), projections=("whitespace",)))
    assert len(union) == 18  # the projection's (12, 2, 0.0) is also a cell of the surface
    assert server.completion_requests == 4 * 18


def test_every_grid_point_can_be_evaluated(tmp_path, instance):
    with ScriptedServer(lambda body: Reply(content="ANSWER: 0")) as server:
        settings = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url)})
        evaluate(settings, instance, ["scripted"], ["arithmetic"], EvalScope(points="all", precision="2"))
    grid = full_grid(load_manifolds(settings.tasks_dir)["arithmetic"])
    points = Warehouse(settings.db_path).query("SELECT point_id, n FROM points")
    assert points.height == len(grid) == 54 and (points["n"] == 2).all()
    assert set(points["point_id"]) == {p.point_id for p in grid}
    assert server.completion_requests == 2 * 54


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--samples", "0"], "positive number of items per point"),
        (["--tier", "easy", "--repeats", "0"], "positive number of samples per item"),
        (["--surface", "nope"], "unknown surface(s) ['nope']; valid surfaces: terms_by_depth"),
        (["--projection", "depth"], "valid projections: terms, whitespace"),
        (["--tier", "extreme"], "valid tiers: easy, hard, medium"),
        (["--points", "most"], "expected 'all'"),
    ],
)
def test_impossible_scopes_are_refused_and_nothing_changes(lab, instance, args, message):
    settings, server = lab
    evaluate(settings, instance, ["scripted"], ["arithmetic"], EvalScope(tiers=["easy"], precision="4"))
    warehouse = Warehouse(settings.db_path)
    before = {t: warehouse.query(f"SELECT * FROM {t} ORDER BY ALL") for t in ("completions", "scored_results", "points", "test_cases")}
    process = rs_process(["eval", "--model", "scripted", "--tasks", "arithmetic", *args], lab_env(settings),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 2, err
    assert message in " ".join(err.split()) and "Traceback" not in err
    for table, rows in before.items():
        assert warehouse.query(f"SELECT * FROM {table} ORDER BY ALL").equals(rows), table
    assert server.completion_requests == 8


def test_adaptive_precision_reaches_its_target_or_cap_and_stops_saturated_points(tmp_path, instance):
    """The scripted model answers a depth-0 expression always right and the others with a known
    accuracy; at half-width 0.1 from 16 to 128 items, every point of the surface ends at the target or
    the cap, the always-right row stops at its first 16 items, and the intervals cover the truth."""
    probe = make_lab(tmp_path / "probe", {})
    oracle = Oracle(probe, items_per_point=128)

    def respond(body):
        known = oracle.lookup(body)
        right = known.params["depth"] == 0 or oracle.is_correct(known)
        return Reply(content=f"ANSWER: {known.answer if right else int(known.answer) + 1}")

    with ScriptedServer(respond) as server:
        settings = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url)}, tasks=("arithmetic",))
        manifold = settings.tasks_dir / "arithmetic.yaml"
        text = manifold.read_text()
        manifold.write_text(text.replace("precision: ", "precision: {adaptive: {half_width: 0.1, min: 16, max: 128}}\n# was: "))
        evaluate(settings, instance, ["scripted"], ["arithmetic"], EvalScope(surfaces=["terms_by_depth"], precision="adaptive"))
        points = Warehouse(settings.db_path).query("SELECT params_json, n, correct, answered, ci_low, ci_high, half_width FROM points")
        assert server.completion_requests == points["n"].sum() < 16 * 128 / 2
    assert points.height == 16
    covered = 0
    for row in points.iter_rows(named=True):
        params = json.loads(row["params_json"])
        if params["depth"] == 0:
            assert (row["n"], row["correct"]) == (16, 16)  # saturated: stopped at the minimum
            continue
        assert row["half_width"] <= 0.1 or row["n"] == 128, row
        truth = true_accuracy("arithmetic", params)
        covered += row["ci_low"] <= truth <= row["ci_high"]
    assert covered >= 11  # of 12: the nominal 95% allows about one miss
