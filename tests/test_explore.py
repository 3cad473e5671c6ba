"""`rs explore`'s JSON views and the exported report, over a real evaluation of two scripted models: every
value a view shows is the one stored in DuckDB, a missing table is a sentence, and nothing is written."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable

import dagster as dg
import duckdb
import polars as pl
import pytest
from explore_lab import MODELS, explored_lab
from helpers import lab_env, make_lab, rs_process, scripted_model
from watched_tables import GAPS, NIGHTS, SUMMARIES, TASKS, TOKENS_RISE, WATCHED, write_watched

from rs_dagster.calibration import CalibrationResponder, point_truth
from rs_dagster.defs.resources import EvalScope
from rs_dagster.explore import nights, views
from rs_dagster.explore.app import running
from rs_dagster.explore.export import export
from rs_dagster.explore.queries import LabData
from rs_dagster.orchestrate import evaluate
from rs_dagster.report.charts import TRUTH_KIND, value_order
from rs_dagster.storage import schemas
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import load_manifolds
from rs_dagster.testing.scripted_server import ScriptedServer

DAGSTER_URL = "http://dagster.example:3000"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with explored_lab(tmp_path_factory.mktemp("explore")) as settings:
        yield settings


def getter(url: str) -> Callable[[str], tuple[int, dict]]:
    def get(path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(url + "api" + path) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)
    return get


@pytest.fixture(scope="module")
def api(lab):
    with running(lab.db_path, DAGSTER_URL) as url:
        yield getter(url)


@pytest.fixture(scope="module")
def watched(lab, tmp_path_factory):
    """The lab with alpha watched (tests/watched_tables.py), a copy: the other tests' lab never watched a model."""
    db = tmp_path_factory.mktemp("watched") / "lab.duckdb"
    shutil.copy(lab.db_path, db)
    write_watched(db)
    return db


@pytest.fixture(scope="module")
def watched_api(lab, watched):
    with running(watched, DAGSTER_URL, cache_dir=lab.cache_dir) as url:
        yield getter(url)


def blocks_of(view: dict, kind: str, name: str) -> dict:
    return next(b for b in view["blocks"] if b["type"] == kind and b.get("name") == name)


def field(view: dict, name: str, key: str):
    return next(i["value"] for i in blocks_of(view, "fields", name)["items"] if i["key"] == key)


def test_leaderboard_ranks_each_tier_and_task_with_the_stored_intervals(lab, api):
    status, view = api("/leaderboard")
    assert status == 200
    rows = blocks_of(view, "table", "leaderboard")["rows"]
    stored = Warehouse(lab.db_path).query("SELECT * FROM leaderboard")
    assert len(rows) == stored.height and set(stored["model"]) == set(MODELS)
    for tier, _rank, model, task, accuracy, flexible, *_ in rows:
        row = stored.filter((pl.col("model") == model) & (pl.col("task") == task["text"]) & (pl.col("tier") == tier)).row(0, named=True)
        assert accuracy == views.interval(row["accuracy"], row["ci_low"], row["ci_high"])
        assert flexible == views.interval(row["flexible_accuracy"], row["flexible_ci_low"], row["flexible_ci_high"])
        assert task["href"] == f"#/task/{task['text']}"
    for tier, task in stored.select("tier", "task").unique().rows():
        ranked = [r for r in rows if r[0] == tier and r[3]["text"] == task]
        accuracies = [float(r[4].split()[0]) for r in ranked if r[4] != "—"]
        assert accuracies == sorted(accuracies, reverse=True) and [r[1] for r in ranked] == list(range(1, len(ranked) + 1))
    scores = Warehouse(lab.db_path).query("SELECT * FROM reasonscore WHERE tier = 'easy' ORDER BY v2 DESC")
    ranked = blocks_of(view, "table", "reasonscore-easy")["rows"]
    assert [r[1] for r in ranked] == scores["model"].to_list() and ranked[0][3] == f"[{scores['v2_low'][0]:.0f}, {scores['v2_high'][0]:.0f}]"
    assert blocks_of(view, "table", "comparisons")["rows"] == [[{"text": "alpha vs beta", "href": "#/compare/alpha/beta"}]]
    tiers = set(Warehouse(lab.db_path).query("SELECT DISTINCT tier FROM reasonscore")["tier"])
    assert {b["name"] for b in view["blocks"] if b["type"] == "chart"} == {"leaderboard", "reasonscore", *(f"reasonscore-bars-{t}" for t in tiers)}
    assert any(b["type"] == "note" and b["text"].startswith("No radar for easy: it has 2 scored tasks") for b in view["blocks"])


def test_task_view_offers_each_projection_and_surface_with_a_model_picker(lab, api):
    status, view = api("/task/arithmetic")
    assert status == 200
    curves, surfaces, traces = (b for b in view["blocks"] if b["type"] == "choice")
    projections = Warehouse(lab.db_path).query("SELECT DISTINCT projection, axis FROM projections WHERE task = 'arithmetic' ORDER BY 1")
    assert [o["label"] for o in curves["options"]] == [f"{p} ({a})" for p, a in projections.rows()]
    curve = curves["options"][0]["blocks"][0]
    assert curve["type"] == "chart" and curve["models"] == list(MODELS) and "layer" in curve["spec"]
    assert surfaces["options"][0]["label"] == "terms × depth (terms_by_depth)" and len(surfaces["options"][0]["blocks"]) == len(MODELS)
    points = blocks_of(view, "table", "points")["rows"]
    stored = Warehouse(lab.db_path).query("SELECT model, params_json FROM points WHERE task = 'arithmetic'")
    assert len(points) == stored.height
    # Grid values as numbers, parameter by parameter as the labels name them (depth, max_operand, terms, ...):
    # depth=0 has terms=3, 6, 12, 24, 48, where the JSON text sorts 12, 24, 3, 48, 6. Model by model.
    assert [r[0] for r in points] == sorted(r[0] for r in points)
    for model in MODELS:
        shown = [json.loads(next(p for p in stored["params_json"] if views.params_label(p) == r[1]["text"])) for r in points if r[0] == model]
        keys = list(shown[0])
        assert [[value_order(p[k]) for k in keys] for p in shown] == sorted([value_order(p[k]) for k in keys] for p in shown)
        assert [p["terms"] for p in shown if p["depth"] == 0] == [3, 6, 12, 24, 48]
    assert [o["label"] for o in traces["options"]] == list(MODELS)
    alpha = {b.get("name"): b for b in traces["options"][0]["blocks"]}
    assert {"survival", "hazard", "tokens"} <= set(alpha)  # scripted models send no reasoning trace, so no compression
    notes = [b["text"] for b in traces["options"][0]["blocks"] if b["type"] == "note"]
    assert notes[0].startswith("No compression view for alpha / arithmetic: none of its") and notes[-1].startswith("Nothing censored for alpha")
    hazard = Warehouse(lab.db_path).query("SELECT * FROM hazard WHERE model = 'alpha' AND task = 'arithmetic' AND tier = 'all'").row(0, named=True)
    assert alpha["tokens"]["items"][0]["value"].startswith(f"{hazard['median_tokens']:.0f} [")
    assert any(b["type"] == "note" and b["text"].startswith("No token-FFT spectra for arithmetic") for b in view["blocks"])
    assert api("/task/nope") == (404, {"error": "no evaluated grid point and no token-FFT spectrum of task 'nope'; tasks with results: arithmetic, boolean"})


def test_point_view_shows_the_stored_statistics_and_pages_its_samples(lab, api):
    point = Warehouse(lab.db_path).query("SELECT * FROM points WHERE model = 'beta' AND task = 'boolean' ORDER BY n DESC, point_id").row(0, named=True)
    status, view = api(f"/point/beta/boolean/{point['point_id']}")
    assert status == 200
    assert field(view, "point", "accuracy") == views.interval(point["accuracy"], point["ci_low"], point["ci_high"])
    assert field(view, "point", "n") == point["n"]
    pager = next(b for b in view["blocks"] if b["type"] == "pager")
    assert (pager["total"], pager["pages"]) == (point["n"], 1)
    samples = blocks_of(view, "table", "samples")["rows"]
    scored = Warehouse(lab.db_path).query("SELECT * FROM scored_results WHERE model = 'beta' AND point_id = ?", [point["point_id"]])
    assert len(samples) == point["n"] and sorted(r[1] for r in samples) == sorted(scored["outcome"])
    assert any(b["type"] == "note" and "No token-FFT spectrum" in b["text"] for b in view["blocks"])

    lab_data = LabData(lab.db_path)
    second = views.point_view(lab_data, "beta", "boolean", point["point_id"], page=1, page_size=3)
    pager = next(b for b in second["blocks"] if b["type"] == "pager")
    assert (pager["page"], pager["pages"]) == (1, -(-point["n"] // 3))
    assert len(blocks_of(second, "table", "samples")["rows"]) == min(3, point["n"] - 3)


def test_sample_view_shows_the_prompt_as_sent_the_answer_and_its_lineage(lab, api):
    row = Warehouse(lab.db_path).query(
        """SELECT s.*, c.answer_text, p.messages_json FROM scored_results s
           JOIN completions c ON c.model = s.model AND c.test_case_id = s.test_case_id AND c.request_hash = s.request_hash
           JOIN prompts p ON p.model = s.model AND p.test_case_id = s.test_case_id AND p.prompt_hash = s.prompt_hash
           WHERE s.model = 'alpha' AND s.parse_rule = 'boxed' ORDER BY s.test_case_id LIMIT 1"""
    ).row(0, named=True)
    status, view = api(f"/sample/alpha/{row['task']}/{row['test_case_id']}/{row['sample_index']}")
    assert status == 200
    assert field(view, "outcome", "parsed_answer") == row["parsed_answer"] and field(view, "outcome", "parse_rule") == "boxed"
    assert field(view, "outcome", "outcome") == row["outcome"]
    prompt = next(b for b in view["blocks"] if b.get("name") == "prompt")["text"]
    assert json.loads(row["messages_json"])[-1]["content"] in prompt
    assert next(b for b in view["blocks"] if b.get("name") == "answer")["text"] == row["answer_text"]
    assert field(view, "lineage", "request_hash") == row["request_hash"]
    assert field(view, "lineage", "dagster_run_id") == {"text": row["dagster_run_id"], "href": f"{DAGSTER_URL}/runs/{row['dagster_run_id']}"}
    assert api(f"/sample/alpha/{row['task']}/{row['test_case_id']}/99")[0] == 404


def test_compare_view_sets_two_models_side_by_side_with_their_paired_test(lab, api):
    status, view = api("/compare/alpha/beta")
    assert status == 200
    side = blocks_of(view, "table", "side-by-side")["rows"]
    board = Warehouse(lab.db_path).query("SELECT * FROM leaderboard WHERE model = 'alpha'")
    assert len(side) == board.height and any(r[2] != r[3] for r in side)  # beta fumbles every third item
    easy = board.filter((pl.col("task") == "arithmetic") & (pl.col("tier") == "easy")).row(0, named=True)
    assert side[0][:3] == [{"text": "arithmetic", "href": "#/task/arithmetic"}, "easy", views.interval(easy["accuracy"], easy["ci_low"], easy["ci_high"])]
    paired = blocks_of(view, "table", "paired")["rows"]
    stored = Warehouse(lab.db_path).query("SELECT * FROM comparisons WHERE kind = 'models' AND level = 'task' ORDER BY task")
    assert [(r[2], r[3], r[6], r[7]) for r in paired] == stored.select("task", "pairs", "b", "c").rows()
    assert api("/compare/alpha/zeta") == (404, {"error": "unknown model 'zeta'; models with results: alpha, beta"})


def test_a_lab_without_results_says_what_to_run_and_is_not_created(tmp_path):
    missing = tmp_path / "none.duckdb"
    view = views.leaderboard_view(LabData(missing))
    assert [b["type"] for b in view["blocks"]] == ["note"] and "run `rs eval`" in view["blocks"][0]["text"]
    assert not missing.exists()


def test_export_writes_every_view_as_scripts_beside_the_front_end(lab, tmp_path):
    written = export(lab.db_path, tmp_path / "out", samples_per_point=2)
    points = Warehouse(lab.db_path).query("SELECT count(*) AS n FROM points")["n"][0]
    assert len(written.routes) == 1 + 2 + points + 2 * points + 1  # leaderboard, tasks, points, 2 samples each, one comparison
    page = (tmp_path / "out" / "index.html").read_text()
    assert '<script src="data/index.js"></script>' in page and "http" not in page
    assert "http" not in (tmp_path / "out" / "app.js").read_text()
    manifest = (tmp_path / "out" / "data" / "index.js").read_text()
    assert '"/compare/alpha/beta"' in manifest and "first 2 samples of each grid point" in manifest
    assert any("No token-FFT spectrum" in n for n in written.notes)
    assert list((tmp_path / "out" / "vega.js").read_text()) and list(lab.cache_dir.glob("vega-*.js"))  # the bundle, cached by the first build
    # The report asset wrote the same export (and no PNG page beside it).
    assert (lab.report_dir / "data" / "index.js").is_file() and not (lab.report_dir / "summary.html").exists()


def test_the_export_shows_what_the_server_shows(lab):
    """The export's views, built from one read of each table, equal the server's, built from a query per view."""
    data, snapshot = LabData(lab.db_path), LabData(lab.db_path).snapshot(1000)
    assert views.leaderboard_view(snapshot) == views.leaderboard_view(data)
    for task in data.tasks():
        assert views.task_view(snapshot, task) == views.task_view(data, task)
        for model, point_id in data.points(task).select("model", "point_id").rows():
            assert views.point_view(snapshot, model, task, point_id) == views.point_view(data, model, task, point_id)
    assert views.compare_view(snapshot, "alpha", "beta") == views.compare_view(data, "alpha", "beta")
    for sample in snapshot.details.head(20).iter_rows(named=True):
        expected = views.sample_view(data, sample["model"], sample["task"], sample["test_case_id"], sample["sample_index"], DAGSTER_URL)
        assert views.sample_view_of(sample, DAGSTER_URL) == expected


def test_a_model_named_with_a_slash_has_working_routes(lab, tmp_path):
    """`org/alpha` (the usual `org/model` name): its segment is escaped in links and decoded by the server."""
    db = tmp_path / "slash.duckdb"
    shutil.copy(lab.db_path, db)
    with duckdb.connect(str(db)) as con:
        for table, column in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE column_name IN ('model', 'model_a', 'model_b')"
        ).fetchall():
            con.execute(f"UPDATE {table} SET {column} = 'org/alpha' WHERE {column} = 'alpha'")
    point = Warehouse(db).query("SELECT point_id FROM points WHERE model = 'org/alpha' ORDER BY point_id LIMIT 1")["point_id"][0]
    with running(db, DAGSTER_URL, cache_dir=lab.cache_dir) as url:
        board = json.load(urllib.request.urlopen(url + "api/leaderboard"))
        assert blocks_of(board, "table", "comparisons")["rows"] == [[{"text": "beta vs org/alpha", "href": "#/compare/beta/org%2Falpha"}]]
        view = json.load(urllib.request.urlopen(f"{url}api/point/org%2Falpha/arithmetic/{point}"))
        assert field(view, "point", "point_id") == point
        sample = blocks_of(view, "table", "samples")["rows"][0][0]["href"]
        assert sample.startswith("#/sample/org%2Falpha/arithmetic/")
        assert json.load(urllib.request.urlopen(url + "api" + sample.removeprefix("#")))["title"].startswith("org/alpha on arithmetic")
        assert json.load(urllib.request.urlopen(url + "api/compare/beta/org%2Falpha"))["title"] == "beta vs org/alpha"
    written = export(db, tmp_path / "out", samples_per_point=1, cache_dir=lab.cache_dir)
    assert f"/point/org%2Falpha/arithmetic/{point}" in written.routes and "/compare/beta/org%2Falpha" in written.routes


def test_rs_explore_prints_its_url_and_serves_until_stopped(lab):
    process = rs_process(["explore", "--port", "0", "--dagster-url", DAGSTER_URL], lab_env(lab), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = process.stdout.readline()
        url = line.split()[1]
        assert line.startswith("Explorer: http://127.0.0.1:") and str(lab.db_path) in line
        with urllib.request.urlopen(url + "api/leaderboard") as response:
            assert json.load(response)["title"] == "Leaderboard"
        port = url.rstrip("/").rsplit(":", 1)[1]
        taken = rs_process(["explore", "--port", port], lab_env(lab), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = taken.communicate(timeout=60)
        assert taken.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_nights_view_shows_each_night_in_order_with_its_interval_and_what_moved(watched, watched_api):
    status, view = watched_api("/nights/alpha")
    assert status == 200 and view["title"] == "Nights of alpha"
    stored = Warehouse(watched).query("SELECT * FROM nights ORDER BY task, night")
    [per_task] = [b for b in view["blocks"] if b["type"] == "choice"]
    assert [o["label"] for o in per_task["options"]] == list(TASKS)
    for option in per_task["options"]:
        rows = option["blocks"][0]["rows"]
        mine = stored.filter(pl.col("task") == option["label"])
        assert [r[0] for r in rows] == list(NIGHTS)
        assert [r[1] for r in rows] == [views.interval(a, low, high) for a, low, high in mine.select("accuracy", "ci_low", "ci_high").rows()]
    flags = {r[0]: (r[7], r[8], r[9]) for r in per_task["options"][0]["blocks"][0]["rows"]}  # arithmetic: fingerprint, flags, what moved
    assert {night: flags[night][2] for night in SUMMARIES} == SUMMARIES
    assert flags[NIGHTS[3]][:2] == ("fp-2", "drift alarm · server changed") and flags[NIGHTS[2]][1] == "drift alarm"
    assert [flags[night][1:] for night in NIGHTS[:2]] == [("—", "—")] * 2
    accuracy = blocks_of(view, "chart", "nights-accuracy")["spec"]
    drawn = pl.DataFrame(accuracy["data"]["values"])
    assert drawn.filter(pl.col("drifted")).select("task", "night").rows() == [("arithmetic", night) for night in SUMMARIES]
    assert drawn.filter(pl.col("server_changed"))["night"].to_list() == [NIGHTS[3]] and {"ci_low", "ci_high"} <= set(drawn.columns)
    assert blocks_of(view, "chart", "nights-usage")
    # The alarms of the latest night only (the third night's accuracy alarm is history), and the quiet task said in words.
    alarms = blocks_of(view, "table", "alarms")["rows"]
    assert [(r[0], r[1], r[4], r[8]) for r in alarms] == [("arithmetic", TOKENS_RISE, "output_tokens", "+300.0")]
    assert {"type": "text", "text": f"No alarm on the latest tested night of boolean ({TOKENS_RISE}, 4 tests)."} in view["blocks"]
    assert watched_api("/nights/beta") == (404, {"error": "no nights of model 'beta'; watched models: alpha"})


def test_the_leaderboard_links_watched_models_and_gives_the_latest_memorisation_gaps(watched_api):
    status, view = watched_api("/leaderboard")
    assert status == 200
    assert blocks_of(view, "table", "watched")["rows"] == [
        [WATCHED, 2, len(NIGHTS), f"{NIGHTS[0]} – {NIGHTS[-1]}", len(SUMMARIES), 1, {"text": "nights", "href": "#/nights/alpha"}]
    ]
    gaps = blocks_of(view, "table", "memorisation")["rows"]
    latest = [GAPS[1], GAPS[3], GAPS[4]]  # the latest night's row; an `eval:` row where a task and tier has no night
    assert [(r[0], r[1], r[2], r[3]) for r in gaps] == [
        ({"text": WATCHED, "href": "#/nights/alpha"} if g["model"] == WATCHED else g["model"], g["task"], g["tier"], g["night"]) for g in latest
    ]
    assert gaps[0][7:] == ["+0.300 [+0.120, +0.480]", "flagged"] and gaps[2][7:] == ["-0.050 [-0.200, +0.100]", "—"]
    assert blocks_of(view, "table", "leaderboard")["rows"]  # the leaderboard itself is unchanged above them


def test_a_lab_that_never_watched_a_model_serves_every_view_without_the_nights_sections(lab, api, tmp_path):
    status, board = api("/leaderboard")
    assert status == 200 and not {b.get("name") for b in board["blocks"]} & {"watched", "memorisation"}
    assert not any("Memorisation" in b.get("text", "") or "Watched" in b.get("text", "") for b in board["blocks"])
    point = Warehouse(lab.db_path).query("SELECT point_id FROM points WHERE model = 'alpha' ORDER BY point_id LIMIT 1")["point_id"][0]
    sample = Warehouse(lab.db_path).query("SELECT task, test_case_id FROM scored_results WHERE model = 'alpha' LIMIT 1").row(0, named=True)
    for path in ("/task/arithmetic", f"/point/alpha/arithmetic/{point}", f"/sample/alpha/{sample['task']}/{sample['test_case_id']}/0",
                 "/compare/alpha/beta"):
        assert api(path)[0] == 200, path
    assert api("/nights/alpha") == (404, {"error": "no nights of model 'alpha'; no watched model (the nights table is missing or empty)"})
    with pytest.raises(views.NotFound, match="no watched model"):
        nights.nights_view(LabData(tmp_path / "none.duckdb"), "alpha")


def test_the_export_holds_the_nights_view_as_the_server_shows_it(lab, watched, tmp_path):
    data, snapshot = LabData(watched), LabData(watched).snapshot(1)
    assert nights.nights_view(snapshot, WATCHED) == nights.nights_view(data, WATCHED)
    assert views.leaderboard_view(snapshot) == views.leaderboard_view(data)
    written = export(watched, tmp_path / "out", samples_per_point=1, cache_dir=lab.cache_dir)
    assert "/nights/alpha" in written.routes and '"/nights/alpha"' in (tmp_path / "out" / "data" / "index.js").read_text()


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A lab that evaluated the real calibration endpoint (rs_dagster.calibration) on arithmetic's `terms`
    projection, 16 items a point, under two entries: `calibration` (models.yaml `calibration: true`) and
    `mimic`, the same endpoint not declared a calibration model."""
    root = tmp_path_factory.mktemp("calibrated")
    responder = CalibrationResponder(make_lab(root / "probe", {}, tasks=("arithmetic",)).tasks_dir, 16)
    with ScriptedServer(responder, model_ids=("calibration",)) as server, dg.instance_for_test() as instance:
        models = {"calibration": scripted_model(server.base_url, served_model="calibration", calibration=True),
                  "mimic": scripted_model(server.base_url, served_model="calibration")}
        settings = make_lab(root / "lab", models, tasks=("arithmetic",))
        evaluate(settings, instance, list(models), ["arithmetic"], EvalScope(projections=["terms"], precision="16"))
    return settings


def truth_of(settings, points: pl.DataFrame) -> dict[str, float]:
    """point_truth of each point (by point_id), from the lab's manifold."""
    spec = load_manifolds(settings.tasks_dir)["arithmetic"]
    return {p["point_id"]: point_truth(spec, json.loads(p["params_json"]), p["guess_chance"]) for p in points.iter_rows(named=True)}


def truth_layers(view: dict) -> list[dict]:
    """The truth layers of the task view's difficulty curves."""
    curves = next(b for b in view["blocks"] if b["type"] == "choice" and b["label"] == "Projection")
    layers = [layer for option in curves["options"] for block in option["blocks"] if block["type"] == "chart"
              for layer in block["spec"].get("layer", [])]
    return [layer for layer in layers if layer["encoding"].get("y", {}).get("field") == "true_accuracy"]


def test_a_calibration_models_curve_carries_its_known_truth_and_another_models_none(calibrated, lab, api):
    specs = Warehouse(calibrated.db_path).query("SELECT model, calibration FROM model_specs ORDER BY model")
    assert specs.rows() == [("calibration", True), ("mimic", False)]
    points = Warehouse(calibrated.db_path).query("SELECT * FROM points WHERE task = 'arithmetic' ORDER BY model, point_id")
    assert set(points["model"]) == {"calibration", "mimic"} and points.filter(pl.col("model") == "calibration").height == 5
    truth = truth_of(calibrated, points.filter(pl.col("model") == "calibration"))
    with running(calibrated.db_path, DAGSTER_URL, cache_dir=lab.cache_dir) as url:
        status, view = getter(url)("/task/arithmetic")
    assert status == 200
    [layer] = truth_layers(view)
    drawn = pl.DataFrame(layer["data"]["values"])
    assert set(drawn["series"]) == {"calibration (truth)"} and set(drawn["model"]) == {"calibration"}  # mimic: no truth
    projections = Warehouse(calibrated.db_path).query("SELECT point_id, axis_value FROM projections WHERE model = 'calibration'")
    expected = {value: truth[point_id] for point_id, value in projections.rows()}
    assert dict(drawn.select("axis_value", "true_accuracy").rows()) == pytest.approx(expected) and drawn.height == 5
    assert layer["mark"]["strokeDash"] == [8, 4] and layer["encoding"]["color"]["field"] == "model"  # dashed, in the model's colour
    assert {t["field"] for t in layer["encoding"]["tooltip"]} >= {"series", "true_accuracy", "accuracy", "interval", "covered", "n"}
    assert TRUTH_KIND in layer["encoding"]["strokeDash"]["scale"]["domain"]
    measured = points.filter(pl.col("model") == "calibration")
    covered = sum(p["ci_low"] <= truth[p["point_id"]] <= p["ci_high"] for p in measured.iter_rows(named=True))
    assert blocks_of(view, "table", "truth")["rows"] == [["calibration", 5, f"{covered} ({covered / 5:.0%})", pytest.approx(
        views.fmt(sum(abs(p["accuracy"] - truth[p["point_id"]]) for p in measured.iter_rows(named=True)) / 5))]]
    assert covered >= 3  # 5 points at 95%: fewer than 3 covered has probability below 0.002
    # A lab without a calibration model draws its curves as before, and says nothing of a truth.
    _, plain = api("/task/arithmetic")
    assert not truth_layers(plain) and not any(b.get("name") == "truth" for b in plain["blocks"])
    assert not any(TRUTH_KIND in json.dumps(b) for b in plain["blocks"])


def test_a_calibration_models_point_shows_its_true_accuracy_beside_the_measured_one(calibrated):
    lab = LabData(calibrated.db_path)
    for point in Warehouse(calibrated.db_path).query("SELECT * FROM points WHERE model = 'calibration'").iter_rows(named=True):
        view = views.point_view(lab, "calibration", "arithmetic", point["point_id"])
        true = truth_of(calibrated, pl.DataFrame([point]))[point["point_id"]]
        keys = [i["key"] for i in blocks_of(view, "fields", "point")["items"]]
        assert keys[keys.index("accuracy") + 1: keys.index("accuracy") + 3] == ["true_accuracy", "truth_covered"]
        assert field(view, "point", "true_accuracy") == views.fmt(true)
        assert field(view, "point", "truth_covered").startswith("yes" if point["ci_low"] <= true <= point["ci_high"] else "no (the truth lies")
    mimic = Warehouse(calibrated.db_path).query("SELECT point_id FROM points WHERE model = 'mimic' LIMIT 1")["point_id"][0]
    keys = [i["key"] for i in blocks_of(views.point_view(lab, "mimic", "arithmetic", mimic), "fields", "point")["items"]]
    assert "true_accuracy" not in keys and "truth_covered" not in keys


def test_the_export_carries_the_known_truth_as_the_server_shows_it(calibrated, lab, tmp_path):
    data, snapshot = LabData(calibrated.db_path), LabData(calibrated.db_path).snapshot(1000)
    assert views.task_view(snapshot, "arithmetic") == views.task_view(data, "arithmetic")
    for model, point_id in data.points("arithmetic").select("model", "point_id").rows():
        assert views.point_view(snapshot, model, "arithmetic", point_id) == views.point_view(data, model, "arithmetic", point_id)
    export(calibrated.db_path, tmp_path / "out", samples_per_point=1, cache_dir=lab.cache_dir)
    scripts = "".join(path.read_text() for path in (tmp_path / "out" / "data").glob("*.js"))
    assert '"series":"calibration (truth)"' in scripts and '"key":"true_accuracy"' in scripts and "mimic (truth)" not in scripts


def test_a_warehouse_from_before_the_calibration_column_reads_no_calibration_model(calibrated, tmp_path):
    """model_specs written by older code: no truth drawn (nor an error); its next write adds the column, older rows reading False."""
    db = tmp_path / "old.duckdb"
    shutil.copy(calibrated.db_path, db)
    with duckdb.connect(str(db)) as con:
        con.execute("ALTER TABLE model_specs DROP COLUMN calibration")
    lab = LabData(db)
    assert lab.calibration_models() == [] and not truth_layers(views.task_view(lab, "arithmetic"))
    row = Warehouse(db).query("SELECT * FROM model_specs WHERE model = 'calibration'").with_columns(calibration=pl.lit(True))
    Warehouse(db).replace_partition("model_specs", schemas.ModelSpecs, row, {"model": "calibration"})
    assert Warehouse(db).query("SELECT model, calibration FROM model_specs ORDER BY model").rows() == [("calibration", True), ("mimic", False)]
    assert LabData(db).calibration_models() == ["calibration"] and truth_layers(views.task_view(LabData(db), "arithmetic"))
