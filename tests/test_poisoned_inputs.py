"""Issue 22, items 4 and 5, through `rs` in a subprocess: inputs that can't poison the lab.

Item 4: `rs eval --base-url http://` was saved as `http:` and a model name with a newline was saved too;
each then broke every later evaluation until .rs/models.local.yaml was edited by hand. Now every value
written there passes the rules that read it back, a bad one is one message naming its option and nothing
is saved, and a bad value an older version saved is one message naming the file and field.
Item 5: `--repeats 1000000000` was accepted and grew past 1.8 GB before a request was sent. Now
`--repeats` is at most MAX_REPEATS and a command may send at most --max-requests / RS_MAX_REQUESTS
(default 100,000) requests, refused before anything is registered, generated or stored."""

import hashlib
import os
import subprocess

import dagster as dg
import pytest
import yaml
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.definitions.partitions.utils.base import INVALID_PARTITION_SUBSTRINGS
from helpers import RS, Oracle, lab_env, make_lab, scripted_model

from rs_dagster.defs.partitions import MODEL_TASK, register_partitions
from rs_dagster.models.registry import MAX_REPEATS, name_problem
from rs_dagster.prompting.bounds import DEFAULT_MAX_REQUESTS
from rs_dagster.settings import PACKAGE_ROOT
from rs_dagster.testing.scripted_server import ScriptedServer

TRACE_MARKERS = ("Traceback", "Stack Trace", "raise ", 'File "')
EVAL = ["eval", "--tasks", "boolean", "--tier", "easy"]  # 2 grid points


def _rs(args, env, timeout=120):
    return subprocess.run([*RS, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, cwd=PACKAGE_ROOT)


def _refused(result, *expected: str) -> None:
    """Exit code 2 and one line, `error: ...` naming each of `expected`, without a traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    assert not any(marker in result.stderr for marker in TRACE_MARKERS), result.stderr[-3000:]
    for part in expected:
        assert part in lines[0], (part, lines[0])


def _state(lab) -> dict[str, str | None]:
    """What a refused command must leave as it was: the model files and the DuckDB file, byte for byte."""
    files = {"models.local.yaml": lab.local_models_file, "models.yaml": lab.models_file, "rs.duckdb": lab.db_path}
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None for name, path in files.items()}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A lab with one evaluation stored and an ad-hoc model `adhoc` registered (so models.local.yaml
    exists), its scripted server still answering."""
    root = tmp_path_factory.mktemp("poison")
    probe = make_lab(root / "probe", {})
    with ScriptedServer(Oracle(probe, items_per_point=4)) as server:
        lab = make_lab(root / "lab", {"scripted": scripted_model(server.base_url, timeout_s=30)})
        done = _rs([*EVAL, "--model", "adhoc", "--base-url", server.base_url, "--served-model", "scripted", "--samples", "1"], lab_env(lab), 300)
        assert done.returncode == 0, done.stderr[-3000:]
        yield lab, server


@pytest.mark.parametrize(
    ("model", "url"),
    [*(("fresh", url) for url in ["http://", "http:", "https:///v1", "http://:8000/v1", "ftp://127.0.0.1/v1", "127.0.0.1:8000/v1",
                                  "http://127.0.0.1:99999/v1", "http://127.0.0.1 :8000/v1"]),
     ("adhoc", "http://"), ("adhoc", "ftp://127.0.0.1/v1")],  # a registered model keeps its entry
)
def test_a_url_without_http_and_a_host_is_refused_and_nothing_is_saved(lab, model, url):
    lab, _ = lab
    before = _state(lab)
    _refused(_rs([*EVAL, "--model", model, "--base-url", url, "--samples", "1"], lab_env(lab)),
             f"--base-url {url!r}", "expected an http(s) URL with a host", "nothing was saved")
    assert _state(lab) == before


@pytest.mark.parametrize("name", ["a\nb", "a\tb", "a\rb", "a\x0bb", "a...b", "a|b", " a", "a ", "a\x1b[31m", "a\u2028b", "a\x7fb"])
def test_a_model_name_that_is_not_a_partition_key_is_refused_and_nothing_is_saved(lab, name):
    lab, server = lab
    before = _state(lab)
    _refused(_rs([*EVAL, "--model", name, "--base-url", server.base_url, "--samples", "1"], lab_env(lab)),
             "--model", f"invalid model name {name!r}", "without '|' or ','")
    assert _state(lab) == before


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--concurrency", "0", "greater than or equal to 1"),
        ("--concurrency", "5000", "less than or equal to 1024"),
        ("--timeout", "0", "greater than 0"),
        ("--timeout", "-1", "greater than 0"),
        ("--timeout", "nan", "finite number"),
        ("--timeout", "inf", "finite number"),
        ("--timeout", "1e300", "less than or equal to 86400"),
        ("--api-key-env", "MY KEY", "name of an environment variable"),
        ("--served-model", "x\ny", "without control characters"),
    ],
)
def test_a_number_or_field_out_of_range_is_refused_naming_its_option(lab, option, value, expected):
    lab, _ = lab
    before = _state(lab)
    given = repr(float(value)) if option == "--timeout" else repr(int(value)) if option == "--concurrency" else repr(value)
    _refused(_rs([*EVAL, "--model", "adhoc", option, value, "--samples", "1"], lab_env(lab)), f"{option} {given}", expected, "nothing was saved")
    assert _state(lab) == before


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"m": {"base_url": "http:", "served_model": "x"}}, ["models.m", "key 'base_url'", "expected an http(s) URL with a host", "'http:'"]),
        ({"a\nb": {"base_url": "http://127.0.0.1:9/v1", "served_model": "x"}}, ["a key of `models`", "invalid model name 'a\\nb'"]),
        ({"m": {"base_url": "http://127.0.0.1:9/v1", "served_model": "x", "concurrency": 0}}, ["models.m", "key 'concurrency'", "(got 0)"]),
        ({"m": {"base_url": "http://127.0.0.1:9/v1", "served_model": "x", "timeout_s": float("inf")}}, ["models.m", "key 'timeout_s'", "finite"]),
        ({"m": {"base_url": "http://127.0.0.1:9/v1", "served_model": "x", "suite": {"repeats": 10**9}}},
         ["models.m", "key 'suite.repeats'", f"less than or equal to {MAX_REPEATS}"]),
    ],
)
def test_a_bad_value_an_older_version_saved_is_one_message_naming_the_file_and_field(lab, entry, expected):
    lab, _ = lab
    saved = lab.local_models_file.read_text()
    poisoned = yaml.safe_load(saved)
    poisoned["models"].update(entry)
    lab.local_models_file.write_text(yaml.safe_dump(poisoned))
    try:
        before = _state(lab)
        for model in ("scripted", "adhoc"):  # every evaluation, not only the bad entry's
            _refused(_rs([*EVAL, "--model", model, "--samples", "1"], lab_env(lab)), str(lab.local_models_file), *expected,
                     "correct the value there or remove the entry")
        assert _state(lab) == before
    finally:
        lab.local_models_file.write_text(saved)


def test_repeats_and_the_request_maximum_are_refused_before_anything_is_stored(lab):
    lab, server = lab
    env = lab_env(lab)
    before = _state(lab)
    _refused(_rs([*EVAL, "--model", "scripted", "--samples", "1", "--repeats", "1000000000"], env, timeout=60),
             "--repeats 1000000000", f"at most {MAX_REPEATS:,}")
    _refused(_rs([*EVAL, "--model", "scripted", "--repeats", "0"], env), "--repeats 0", "positive number of samples per item")
    _refused(_rs([*EVAL, "--model", "scripted", "--samples", "1000000"], env, timeout=60),
             "up to 2,000,000 requests", f"maximum of {DEFAULT_MAX_REQUESTS:,}", "--max-requests N", "RS_MAX_REQUESTS")
    _refused(_rs([*EVAL, "--model", "scripted", "--samples", "100", "--repeats", "1000"], env, timeout=60),
             "up to 200,000 requests", "2 grid points", "200 items", "1,000 sample(s) per item")
    _refused(_rs([*EVAL, "--model", "scripted,adhoc", "--samples", "30000"], env, timeout=60),
             "up to 119,998 requests", "2 model × task pair(s)", "2 answers stored")  # 120,000 less what is stored
    _refused(_rs([*EVAL, "--model", "scripted", "--samples", "4"], {**env, "RS_MAX_REQUESTS": "7"}), "up to 8 requests", "maximum of 7")
    _refused(_rs([*EVAL, "--model", "scripted", "--samples", "4"], {**env, "RS_MAX_REQUESTS": "lots"}), "RS_MAX_REQUESTS='lots'")
    _refused(_rs([*EVAL, "--model", "scripted", "--samples", "4", "--max-requests", "0"], env), "--max-requests 0")
    # A new model whose scope is too large is not registered.
    _refused(_rs([*EVAL, "--model", "fresh", "--base-url", server.base_url, "--samples", "1000000"], env, timeout=60),
             "up to 2,000,000 requests", "Nothing was registered")
    assert _state(lab) == before
    assert "fresh" not in lab.local_models_file.read_text()


def test_a_good_registration_after_refused_ones_still_works(lab):
    """After the refusals above: a valid registration and an unusual but valid name evaluate end to end,
    and --max-requests (here exactly the scope's 8 requests) overrides RS_MAX_REQUESTS."""
    lab, server = lab
    env = {**lab_env(lab), "RS_MAX_REQUESTS": "1"}
    _refused(_rs([*EVAL, "--model", "adhoc", "--base-url", "http://", "--samples", "4"], env), "--base-url 'http://'")
    done = _rs([*EVAL, "--model", "adhoc", "--base-url", server.base_url, "--concurrency", "3", "--timeout", "20", "--samples", "4",
                "--max-requests", "8"], env, 300)
    assert done.returncode == 0, done.stderr[-3000:]
    entry = yaml.safe_load(lab.local_models_file.read_text())["models"]["adhoc"]
    assert (entry["base_url"], entry["concurrency"], entry["timeout_s"], entry["served_model"]) == (server.base_url, 3, 20, "scripted")
    name = "org/Model-1.5 b"
    done = _rs([*EVAL, "--model", name, "--base-url", server.base_url + "/", "--served-model", "scripted", "--samples", "1"],
               lab_env(lab), 300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert yaml.safe_load(lab.local_models_file.read_text())["models"][name]["base_url"] == server.base_url  # stored without the '/'
    again = _rs([*EVAL, "--model", f"scripted,{name}", "--samples", "1"], lab_env(lab), 300)  # what was saved reads back
    assert again.returncode == 0, again.stderr[-3000:]


def test_the_model_name_rule_covers_dagsters_partition_key_rule():
    """Every substring Dagster refuses in a partition key is refused in a model name, and names the rule
    accepts make partition keys Dagster accepts (dynamic and model|task)."""
    for bad in INVALID_PARTITION_SUBSTRINGS:
        assert name_problem(f"a{bad}b") is not None, bad
    with dg.instance_for_test() as instance:
        for good in ["m", "org/Model-1.5 b", "qwen3:8b@q4", "modèle", "a..b"]:
            assert name_problem(good) is None, good
            register_partitions(instance, [good, "other"], ["boolean"])
            key = dg.MultiPartitionKey({"model": good, "task": "boolean"})
            with partition_loading_context(dynamic_partitions_store=instance):
                assert MODEL_TASK.has_partition_key(key) and key.keys_by_dimension["model"] == good
