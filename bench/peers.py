"""Peer frameworks on the same loopback server as bench/orchestration.py: how long lm-evaluation-harness
and inspect_ai take to send COUNT chat completions (at most CONCURRENCY in flight) to an OpenAI-compatible
server serving the model "scripted", and to score the answers (target "42" for every prompt), each through
its own normal machinery (lm-eval: a generate_until task over a local JSONL file, local-chat-completions,
regex filter + exact_match, no request cache; inspect_ai: a Task with generate() and match(), the
openai-api provider, logs to a temporary folder). `seconds` runs from process start (`import_seconds`
of it is the imports); the caller counts the completions the server received.

Runs in a venv of its own, never the project's (this file imports nothing from rs_dagster):

    python3 -m venv /tmp/peers-venv
    /tmp/peers-venv/bin/pip install lm-eval==0.4.13 inspect-ai==0.3.285 openai
    /tmp/peers-venv/bin/python bench/peers.py lm-eval|inspect URL COUNT CONCURRENCY   # URL: http://127.0.0.1:PORT/v1
    /tmp/peers-venv/bin/python bench/peers.py versions
"""

import time

STARTED = time.perf_counter()

import importlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from importlib.metadata import version  # noqa: E402

os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
PROMPT = "Evaluate 3 + {i} * (4 - 2). End with ANSWER: <integer>."


def run_lm_eval(url: str, count: int, concurrency: int, folder: str) -> float:
    import lm_eval

    data = os.path.join(folder, "peers_arithmetic.jsonl")
    with open(data, "w") as out:
        out.writelines(json.dumps({"prompt": PROMPT.format(i=i), "target": "42"}) + "\n" for i in range(count))
    task = {
        "task": "peers_arithmetic",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": data}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{target}}",
        "generation_kwargs": {"until": ["<|never|>"], "max_gen_toks": 16, "temperature": 0.0, "do_sample": False},
        "filter_list": [{"name": "answer", "filter": [{"function": "regex", "regex_pattern": r"ANSWER:\s*(-?\d+)"}, {"function": "take_first"}]}],
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
    }
    model_args = {
        "model": "scripted",
        "base_url": f"{url.rstrip('/')}/chat/completions",
        "num_concurrent": concurrency,
        "tokenizer_backend": None,  # no tokenizer: the default ("huggingface") would fetch one from the hub
        "tokenized_requests": False,
        "max_retries": 1,
        "timeout": 60,
    }
    os.environ.setdefault("OPENAI_API_KEY", "bench-key")
    results = lm_eval.simple_evaluate(
        model="local-chat-completions", model_args=model_args, tasks=[task], apply_chat_template=True,
        batch_size=1, use_cache=None, cache_requests=False, log_samples=False, bootstrap_iters=0,
    )
    return results["results"]["peers_arithmetic"]["exact_match,answer"]


def run_inspect(url: str, count: int, concurrency: int, folder: str) -> float:
    from inspect_ai import Task, eval
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.scorer import match
    from inspect_ai.solver import generate

    dataset = MemoryDataset([Sample(input=PROMPT.format(i=i), target="42") for i in range(count)])
    task = Task(dataset=dataset, solver=generate(), scorer=match(location="end"), name="peers_arithmetic")
    [log] = eval(
        task, model="openai-api/local/scripted", model_base_url=url, model_args={"api_key": "bench-key"},
        max_connections=concurrency, temperature=0.0, max_tokens=16, log_dir=os.path.join(folder, "logs"),
        display="none", max_retries=1, timeout=60,
    )
    if log.status != "success":
        raise SystemExit(f"inspect eval {log.status}: {log.error}")
    return log.results.scores[0].metrics["accuracy"].value


def main() -> None:
    if sys.argv[1:] == ["versions"]:
        print(f"lm-eval={version('lm_eval')} inspect-ai={version('inspect_ai')}")
        return
    peer, url, count, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    runners = {"lm-eval": (run_lm_eval, "lm_eval", ["lm_eval.evaluator", "lm_eval.tasks", "lm_eval.models.openai_completions"]),
               "inspect": (run_inspect, "inspect_ai", ["inspect_ai", "inspect_ai.dataset", "inspect_ai.scorer", "inspect_ai.solver"])}
    run, package, modules = runners[peer]
    logging.disable(logging.WARNING)  # the per-request warnings are not what is measured
    with tempfile.TemporaryDirectory(prefix="peers-") as folder:
        os.environ["HF_DATASETS_CACHE"] = os.path.join(folder, "datasets")  # a fresh dataset cache per run
        for module in modules:  # the framework's imports, reported apart (import_seconds)
            importlib.import_module(module)
        imported = time.perf_counter()
        accuracy = run(url, count, concurrency, folder)
    seconds = time.perf_counter() - STARTED
    print(f"peer={peer} version={version(package)} count={count} seconds={seconds:.2f} "
          f"import_seconds={imported - STARTED:.2f} accuracy={accuracy}", flush=True)


if __name__ == "__main__":
    main()
