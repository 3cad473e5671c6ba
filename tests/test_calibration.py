"""The known-truth calibration endpoint: its accuracy at each grid point is a documented function of the
point's difficulty, and an evaluation of it through the whole lab measures that truth (every Wilson 95%
interval of a surface covers it at about the stated rate)."""

import json

import dagster as dg
import polars as pl
from helpers import make_lab, scripted_model

from rs_dagster.calibration import CalibrationResponder, point_difficulty, true_accuracy
from rs_dagster.defs.resources import EvalScope
from rs_dagster.orchestrate import evaluate
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import load_manifolds
from rs_dagster.testing.scripted_server import ScriptedServer

ITEMS = 96


def test_the_truth_falls_from_near_ceiling_at_the_easiest_point_to_chance_at_the_hardest(tmp_path):
    spec = load_manifolds(make_lab(tmp_path, {}).tasks_dir)["arithmetic"]
    grid = spec.doc.grid
    easiest = {axis: values[0] for axis, values in grid.items()}
    hardest = {axis: values[-1] for axis, values in grid.items()}
    assert point_difficulty(spec, easiest) == 0.0 and point_difficulty(spec, hardest) == 1.0
    assert 0.93 < true_accuracy(0.0, 0.0) < 0.95 and true_accuracy(1.0, 0.0) < 0.01 and abs(true_accuracy(0.45, 0.5) - 0.7375) < 1e-9
    accuracies = [true_accuracy(d / 10, 0.25) for d in range(11)]
    assert accuracies == sorted(accuracies, reverse=True) and min(accuracies) > 0.25


def test_an_evaluation_of_the_calibration_endpoint_measures_its_truth_on_a_whole_surface(tmp_path):
    lab = make_lab(tmp_path, {})
    responder = CalibrationResponder(lab.tasks_dir, ITEMS)
    with ScriptedServer(responder, model_ids=("calibration",)) as server, dg.instance_for_test() as instance:
        lab = make_lab(tmp_path / "lab", {"calibration": scripted_model(server.base_url, served_model="calibration", calibration=True)})
        evaluate(lab, instance, ["calibration"], ["arithmetic"], EvalScope(surfaces=["terms_by_depth"], precision=str(ITEMS)))
    spec = load_manifolds(lab.tasks_dir)["arithmetic"]
    points = Warehouse.from_settings(lab).table("points", {"model": "calibration"})
    assert points.height == 16 and set(points["n"]) == {ITEMS} and set(points["format_compliance"]) == {1.0}
    truth = pl.Series([true_accuracy(point_difficulty(spec, json.loads(p)), 0.0) for p in points["params_json"]])
    covered = ((points["ci_low"] <= truth) & (truth <= points["ci_high"])).sum()
    # 16 cells at 95%: 15.2 expected; at least 13 holds with probability 0.99 (binomial), the draws are fixed by question
    assert covered >= 13, points.select("params_json", "accuracy", "ci_low", "ci_high").with_columns(truth=truth)
    assert points["accuracy"].max() > 0.8 and points["accuracy"].min() < 0.2  # a real collapse across the surface
