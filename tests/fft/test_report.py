"""Token-FFT in the report, on real data: two models with real tokenizers of two families (SmolLM2 GGUF,
Qwen3 folder) evaluated through Dagster against the scripted OpenAI server, then a task with spectra of
one model and no evaluation. The comparison and band charts are checked on their data and PNG bytes."""

from __future__ import annotations

import base64
import json
import re

import dagster as dg
import polars as pl
import pytest
from helpers import Oracle, make_lab, scripted_model

from rs_dagster.definitions import build_definitions
from rs_dagster.defs.resources import EvalScope
from rs_dagster.fft.charts import BAND_COLUMNS, POINT_COLUMNS, SPECTRUM_COLUMNS, task_figures, with_points
from rs_dagster.orchestrate import evaluate, spectra
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.testing.scripted_server import ScriptedServer

from .conftest import llama_cpp_missing_reason

KEYS = ["model", "task", "point_id"]
ARITHMETIC_EVALUATED = 2 + 8  # easy and medium points of assets/tasks/arithmetic.yaml
ARITHMETIC_POINTS = 31  # the whole manifold: fft_spectra needs no completions


def svg_of_markdown(text: str) -> str:
    return base64.b64decode(re.search(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", text).group(1)).decode()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, fetched_tokenizers):
    """smol and qwen evaluated on arithmetic (spectra + points); boolean has spectra of smol only and no points."""
    if reason := llama_cpp_missing_reason():
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("fft_report")
    oracle = Oracle(make_lab(root / "probe", {}, tasks=("arithmetic",)), items_per_point=8)
    tokenizers = {"smol": {"source": "gguf", "path": "bundled:smollm2"}, "qwen": {"source": "local", "path": str(fetched_tokenizers / "qwen3")}}
    with ScriptedServer(oracle, model_ids=tuple(tokenizers)) as server, dg.instance_for_test() as instance:
        models = {name: scripted_model(server.base_url, served_model=name, tokenizer=spec) for name, spec in tokenizers.items()}
        settings = make_lab(root / "lab", models)
        evaluate(settings, instance, ["smol", "qwen"], ["arithmetic"], EvalScope(tiers=["easy", "medium"], precision="8"))
        spectra(settings, instance, "smol", "boolean", EvalScope(precision="4"))
        defs = build_definitions(settings)
        result = dg.materialize(list(defs.assets), selection=["report"], instance=instance, resources=defs.resources)
        assert result.success
        yield settings, instance, server


def tables(settings) -> tuple[pl.DataFrame, pl.DataFrame]:
    warehouse = Warehouse(settings.db_path)
    return (
        warehouse.query("SELECT * FROM fft_spectra ORDER BY model, task, point_id"),
        warehouse.query("SELECT * FROM points ORDER BY model, task, point_id"),
    )


def test_band_energies_join_points_on_model_task_point(lab):
    settings, _, server = lab
    fft, points = tables(settings)
    assert server.completion_requests == 2 * ARITHMETIC_EVALUATED * 8
    assert fft.group_by("model", "task").len().sort("model", "task").rows() == [
        ("qwen", "arithmetic", ARITHMETIC_POINTS),
        ("smol", "arithmetic", ARITHMETIC_POINTS),
        ("smol", "boolean", fft.filter(pl.col("task") == "boolean").height),
    ]
    joined = with_points(fft, points)
    assert set(joined.columns) >= {*SPECTRUM_COLUMNS, *POINT_COLUMNS, "mean_tokens", "tokenizer"}
    assert joined.height == points.height == 2 * ARITHMETIC_EVALUATED
    assert joined.select(KEYS).rows() == points.select(KEYS).rows()  # every evaluated point has its spectrum
    by_key = {tuple(r[k] for k in KEYS): r for r in points.iter_rows(named=True)}
    spectra_by_key = {tuple(r[k] for k in KEYS): r for r in fft.iter_rows(named=True)}
    for row in joined.iter_rows(named=True):
        key = tuple(row[k] for k in KEYS)
        for column in POINT_COLUMNS:
            assert row[column] == by_key[key][column], (key, column)
        for column in BAND_COLUMNS:
            assert row[column] == spectra_by_key[key][column], (key, column)
        assert row["params_json"] == by_key[key]["params_json"]
    assert joined["accuracy"].is_not_null().all() and (joined["truncation_rate"] == 0.0).all()


def test_model_comparison_averages_each_models_points(lab):
    settings, _, _ = lab
    fft, points = tables(settings)
    arithmetic, _boolean = task_figures(fft, points)
    assert (arithmetic.task, arithmetic.models, arithmetic.missing) == ("arithmetic", ["qwen", "smol"], [])
    lines = pl.DataFrame(arithmetic.comparison.data)
    assert sorted(lines["model"].unique()) == ["qwen", "smol"]
    assert (lines["points"] == ARITHMETIC_POINTS).all()
    dc = lines.filter(pl.col("frequency") == 0.0).sort("model")
    for model, magnitude in dc.select("model", "magnitude").rows():  # DC is the mean token id, averaged per point
        expected = fft.filter((pl.col("model") == model) & (pl.col("task") == "arithmetic"))["mean_magnitude"].list.first().mean()
        assert magnitude == pytest.approx(expected)
    assert dc["magnitude"][0] > 2 * dc["magnitude"][1]  # Qwen3's ids (vocab 151k) sit far above SmolLM2's (49k)


def test_band_chart_has_one_point_per_band_and_evaluated_point(lab):
    settings, _, _ = lab
    fft, points = tables(settings)
    arithmetic = task_figures(fft, points)[0]
    assert arithmetic.joined.height == 2 * ARITHMETIC_EVALUATED
    marks = pl.DataFrame(arithmetic.bands.data)
    assert marks.height == len(BAND_COLUMNS) * 2 * ARITHMETIC_EVALUATED  # every band energy of these prompts is > 0
    assert marks.group_by("band").len().sort("band").rows() == [(b, 2 * ARITHMETIC_EVALUATED) for b in sorted(BAND_COLUMNS)]
    low = marks.filter(pl.col("band") == "low").sort(KEYS)
    assert low["energy"].to_list() == arithmetic.joined.sort(KEYS)["low"].to_list()
    assert low["accuracy"].to_list() == arithmetic.joined.sort(KEYS)["accuracy"].to_list()


def test_a_task_without_a_second_model_or_points_gets_no_chart_and_says_why(lab):
    settings, _, _ = lab
    boolean = task_figures(*tables(settings))[1]
    assert (boolean.task, boolean.models, boolean.comparison, boolean.bands) == ("boolean", ["smol"], None, None)
    assert boolean.joined.is_empty()
    assert boolean.missing[0].startswith("No model comparison: only smol has spectra of boolean")
    assert boolean.missing[1].startswith("No band energy vs accuracy: no grid point of boolean")


def test_report_task_views_and_asset_metadata_carry_the_charts(lab):
    settings, instance, _ = lab
    manifest = json.loads((settings.report_dir / "data" / "index.js").read_text().split("window.RS_EXPORT=", 1)[1].rstrip(";\n"))

    def task_view(task: str) -> dict:
        script = (settings.report_dir / manifest["files"][f"/task/{task}"]).read_text()
        return json.loads(script.split("=", 1)[1].rstrip(";\n"))

    def charts(blocks: list) -> dict[str, dict]:
        found = {}
        for block in blocks:
            if block["type"] == "chart":
                found[block["name"]] = block
            elif block["type"] == "choice":
                for option in block["options"]:
                    found.update(charts(option["blocks"]))
        return found

    arithmetic, boolean = task_view("arithmetic"), task_view("boolean")
    drawn = charts(arithmetic["blocks"])
    assert drawn["fft-models"]["models"] == ["qwen", "smol"] and "arithmetic: band energy vs strict accuracy" in json.dumps(drawn["fft-bands"]["spec"])
    projections = {"arithmetic": ["terms (terms)", "whitespace (whitespace_removed)"], "boolean": ["length (length)", "notation (notation)"]}
    for task, view, models in (("arithmetic", arithmetic, ["qwen", "smol"]), ("boolean", boolean, ["smol"])):
        spectrum = next(b for b in view["blocks"] if b["type"] == "choice" and b["label"] == "Spectrum")
        labels = [o["label"].split(": ", 1) for o in spectrum["options"]]
        assert {(m.split(" (")[0], p) for m, p in labels} == {(m, f"projection {p}") for m in models for p in projections[task]}
    assert not {"fft-models", "fft-bands"} & set(charts(boolean["blocks"]))
    assert f"{2 * ARITHMETIC_EVALUATED} grid points (model × point) of arithmetic" in json.dumps(arithmetic, ensure_ascii=False)
    notes = [b["text"] for b in boolean["blocks"] if b["type"] == "note"]
    assert any(n.startswith("No model comparison: only smol has spectra of boolean") for n in notes)
    assert any(n.startswith("No band energy vs accuracy: no grid point of boolean") for n in notes)

    event = instance.get_latest_materialization_event(dg.AssetKey("report"))
    metadata = event.asset_materialization.metadata
    assert {"fft_models/arithmetic", "fft_bands/arithmetic", "leaderboard"} <= set(metadata)
    assert not {"fft_models/boolean", "fft_bands/boolean"} & set(metadata)
    for key, title in (
        ("fft_models/arithmetic", "arithmetic: token spectrum by model"),
        ("fft_bands/arithmetic", "arithmetic: band energy vs accuracy"),
    ):
        svg = svg_of_markdown(metadata[key].value)
        assert svg.startswith("<svg") and len(svg) > 5_000 and title in metadata[key].value and "<path" in svg
    assert "only smol has spectra of boolean" in metadata["fft_not_drawn"].value
