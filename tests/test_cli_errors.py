"""What a new user runs into, through `rs` in a subprocess: every user error is one message naming what
was wrong and what is expected, exit code 2, no traceback (unless --debug), and nothing stored changes."""

import os
import subprocess

import pytest
import yaml
from helpers import RS, Oracle, lab_env, make_lab, scripted_model

from rs_dagster.settings import PACKAGE_ROOT
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.testing.scripted_server import ScriptedServer

TRACE_MARKERS = ("Traceback", "Stack Trace", "raise ", 'File "')


def _rs(args, env, timeout=300):
    return subprocess.run([*RS, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, cwd=PACKAGE_ROOT)


def _one_clear_error(result, *expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    text = " ".join(result.stderr.split())
    for part in expected:
        assert part in text, (part, result.stderr[-2000:])
    assert not any(marker in result.stderr for marker in TRACE_MARKERS), result.stderr[-3000:]
    assert result.stderr.count("error:") == 1


@pytest.fixture
def evaluated(tmp_path):
    """A lab with one evaluation stored, and a snapshot function of its tables."""
    probe = make_lab(tmp_path / "probe", {})
    with ScriptedServer(Oracle(probe, items_per_point=4)) as server:
        lab = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url, timeout_s=30)})
        done = _rs(["eval", "--model", "scripted", "--tasks", "boolean", "--tier", "easy", "--samples", "4"], lab_env(lab))
        assert done.returncode == 0, done.stderr[-2000:]
        warehouse = Warehouse(lab.db_path)

        def tables():
            return {t: warehouse.query(f"SELECT * FROM {t} ORDER BY ALL") for t in ("completions", "scored_results", "points")}

        yield lab, server, tables


def test_an_unknown_option_is_one_line_and_debug_shows_the_trace(tmp_path):
    env = {"RS_HOME": str(tmp_path / ".rs")}
    _one_clear_error(_rs(["eval", "--bogus"], env), "No such option: --bogus", "rs eval --help")
    _one_clear_error(_rs(["eval"], env), "Missing option '--model'")
    debug = _rs(["eval", "--bogus", "--debug"], env)
    assert debug.returncode != 0 and "NoSuchOption" in debug.stderr and "Traceback" in debug.stderr


def test_several_models_are_evaluated_together_but_registered_one_at_a_time(tmp_path):
    env = {"RS_HOME": str(tmp_path / ".rs")}
    _one_clear_error(_rs(["eval", "--model", "a,b", "--base-url", "http://127.0.0.1:9/v1"], env), "--model 'a,b'", "take one model, not 2")
    _one_clear_error(_rs(["eval", "--model", " , "], env), "--model: give a model name")
    _one_clear_error(_rs(["eval", "--model", "smollm2-135m,nobody", "--tasks", "boolean"], env), "nobody")
    assert not (tmp_path / ".rs" / "models.local.yaml").exists()


def test_an_unreachable_endpoint_is_one_line_and_keeps_what_was_stored(evaluated):
    lab, _, tables = evaluated
    before = tables()
    models = yaml.safe_load(lab.models_file.read_text())
    models["models"]["down"] = scripted_model("http://127.0.0.1:9/v1")
    lab.models_file.write_text(yaml.safe_dump(models))
    result = _rs(["eval", "--model", "down", "--tasks", "boolean", "--tier", "easy", "--samples", "4"], lab_env(lab))
    _one_clear_error(result, "cannot reach the endpoint http://127.0.0.1:9/v1: connection refused (127.0.0.1:9)", "Nothing was recorded")
    after = tables()
    assert all(before[t].equals(after[t]) for t in before)


def test_a_file_that_is_not_duckdb_is_named(evaluated, tmp_path):
    lab, _, _ = evaluated
    bad = tmp_path / "notes.txt"
    bad.write_text("not a database\n")
    env = {**lab_env(lab), "RS_DB": str(bad)}
    _one_clear_error(_rs(["leaderboard"], env), str(bad), "not a valid DuckDB database")
    _one_clear_error(_rs(["eval", "--model", "scripted", "--tasks", "boolean", "--samples", "1"], env), str(bad))
    assert bad.read_text() == "not a database\n"


def test_a_state_directory_that_cannot_be_written_is_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = _rs(["eval", "--model", "smollm2-135m", "--samples", "1"], {"RS_HOME": str(blocker / ".rs")})
    _one_clear_error(result, str(blocker / ".rs"), "must be writable")


def test_a_bad_model_name_is_refused_before_anything_is_written(evaluated):
    lab, server, tables = evaluated
    before = tables()
    result = _rs(["eval", "--model", "a|b", "--base-url", server.base_url], lab_env(lab))
    _one_clear_error(result, "invalid model name 'a|b'", "without '|' or ','")
    assert not lab.local_models_file.exists()
    again = _rs(["eval", "--model", "scripted", "--tasks", "boolean", "--tier", "easy", "--samples", "4"], lab_env(lab))
    assert again.returncode == 0, again.stderr[-2000:]  # the lab still works
    after = tables()
    assert all(before[t].equals(after[t]) for t in before)


def test_re_registering_keeps_hand_set_fields_and_timeout_applies_to_registered_models(evaluated):
    lab, server, _ = evaluated
    env = lab_env(lab)
    assert _rs(["eval", "--model", "adhoc", "--base-url", server.base_url, "--served-model", "scripted", "--tasks", "boolean",
                "--tier", "easy", "--samples", "1"], env).returncode == 0
    local = yaml.safe_load(lab.local_models_file.read_text())
    local["models"]["adhoc"]["timeout_s"] = 7.5  # set by hand
    lab.local_models_file.write_text(yaml.safe_dump(local))
    assert _rs(["eval", "--model", "adhoc", "--base-url", server.base_url, "--concurrency", "3", "--tasks", "boolean",
                "--tier", "easy", "--samples", "1"], env).returncode == 0
    entry = yaml.safe_load(lab.local_models_file.read_text())["models"]["adhoc"]
    assert (entry["timeout_s"], entry["concurrency"], entry["served_model"]) == (7.5, 3, "scripted")
    # --timeout on a model of models.yaml: saved as a local override of its entry, the rest kept.
    assert _rs(["eval", "--model", "scripted", "--timeout", "12", "--tasks", "boolean", "--tier", "easy", "--samples", "1"], env).returncode == 0
    override = yaml.safe_load(lab.local_models_file.read_text())["models"]["scripted"]
    assert override["timeout_s"] == 12 and override["base_url"] == server.base_url and override["max_retries"] == 2
    _one_clear_error(_rs(["eval", "--model", "nobody", "--timeout", "5"], env), "--model 'nobody' is not registered", "--base-url")


def test_tasks_generate_defaults_to_a_tier_point_and_lists_the_axes(tmp_path):
    env = {"RS_HOME": str(tmp_path / ".rs")}
    result = _rs(["tasks", "generate", "arithmetic", "--count", "3"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 3 and '"terms": 3, "depth": 0' in result.stdout  # the first point of easy
    hard = _rs(["tasks", "generate", "arithmetic", "--tier", "hard", "--point", "3", "--count", "1"], env)
    assert hard.returncode == 0 and '"terms": 24' in hard.stdout
    _one_clear_error(_rs(["tasks", "generate", "arithmetic", "--params", "{}"], env),
                     "terms: Field required", "the axes of 'arithmetic': terms [3, 6, 12, 24, 48], depth [0, 1, 2, 4]")
    _one_clear_error(_rs(["tasks", "generate", "arithmetic", "--tier", "hard", "--point", "99"], env), "has 12 points (0 to 11)")


def test_a_task_file_that_is_not_utf8_and_parallel_0_are_one_message_each(tmp_path):
    """Issue 22, item 5: a non-UTF-8 task YAML gave a 97-line traceback, and --parallel 0 was accepted
    when the no-change shortcut answered first."""
    lab = make_lab(tmp_path / "lab", {"scripted": scripted_model("http://127.0.0.1:9/v1")})
    (lab.inputs / "tasks" / "boolean.yaml").write_bytes("name: boolean\n# caf\u00e9\n".encode("latin-1"))
    _one_clear_error(_rs(["eval", "--model", "scripted", "--tasks", "arithmetic"], lab_env(lab)), "boolean.yaml", "not UTF-8")
    _one_clear_error(_rs(["eval", "--model", "scripted", "--parallel", "0"], lab_env(lab)), "--parallel", "greater than or equal to 1")
