"""Token-FFT throughput: render + tokenize + spectrum for ITEMS items × POINTS arithmetic grid points.

Goal (issue 5): 128 items × 50 points of any task in under 10 s on 2 cores, tokenization included.
The baseline, measured in the same run, is tokenization alone; the ratio end-to-end / tokenization
shows what the FFT adds. Each figure is the best of --repeat runs. The prompts are the ones fft_spectra
measures: each item through a prompt template of assets/templates (--template, default zero_shot, the
models.yaml default), then the tokenizer's chat template. Item generation and prompt templating are
timed apart (they are not part of the token-FFT).

    python bench/fft.py [--items 128] [--points 50] [--repeat 3] [--template zero_shot]
Needs scripts/fetch_tokenizers.sh for the local and tiktoken tokenizers; the GGUF needs llama-cpp-python.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from rs_dagster.errors import InputError
from rs_dagster.fft.spectrum import summarize_point
from rs_dagster.fft.tokenizers import TokenizerSpec, load_tokenizer
from rs_dagster.inputs import load_named
from rs_dagster.prompting.templates import Template
from rs_dagster.settings import PACKAGE_ROOT
from rs_dagster.tasks import get_task
from rs_dagster.tasks.generation import generate_point

GOAL_S = 10.0
TOKENIZERS_DIR = Path(__file__).resolve().parents[1] / ".rs" / "tokenizers"
SPECS = {
    "local qwen3": TokenizerSpec(source="local", path=str(TOKENIZERS_DIR / "qwen3")),
    "gguf smollm2": TokenizerSpec(source="gguf", path="bundled:smollm2"),
    "tiktoken o200k": TokenizerSpec(
        source="tiktoken", path=str(TOKENIZERS_DIR / "tiktoken" / "o200k_base.json"), chat_template="chatml"
    ),
}


def arithmetic_points(count: int) -> list[dict]:
    """Valid combos of the arithmetic manifold's grid (terms × depth × whitespace_removed)."""
    task = get_task("arithmetic")
    points = []
    for terms, depth, whitespace in itertools.product([3, 6, 12, 24, 48], [0, 1, 2, 4], [0.0, 0.5, 1.0]):
        params = {"terms": terms, "depth": depth, "whitespace_removed": whitespace, "max_operand": 9}
        try:
            task.validate_params(params, where="bench")
        except InputError:
            continue
        points.append(params)
    if len(points) < count:
        raise SystemExit(f"only {len(points)} valid arithmetic points; ask for at most that many")
    return points[:count]


def best_of(repeat: int, work, *args) -> float:
    """Least wall time of `repeat` runs of work(*args): the machine is shared, so the minimum is the least noisy."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work(*args)
        times.append(time.perf_counter() - started)
    return min(times)


def tokenize_and_summarize(tokenizer, chats) -> None:
    for point in chats:
        summarize_point(tokenizer.encode_chats(point))


def tokenize(tokenizer, chats) -> list[list[list[int]]]:
    return [tokenizer.encode_chats(point) for point in chats]


def summarize(token_ids) -> None:
    for ids in token_ids:
        summarize_point(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=128)
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs per measurement")
    parser.add_argument("--template", default="zero_shot", help="prompt template in assets/templates")
    args = parser.parse_args()

    started = time.perf_counter()
    task = get_task("arithmetic")
    template, _ = load_named(PACKAGE_ROOT / "assets" / "templates", args.template, Template, "template")
    chats = [
        [template.render(task, g.item, "arithmetic", params, 1) for g in generate_point(task, "arithmetic", params, 1, args.items)]
        for params in arithmetic_points(args.points)
    ]
    n_items = sum(len(point) for point in chats)
    print(
        f"generated {n_items} items ({args.items} × {args.points} arithmetic points, template {args.template}) "
        f"in {time.perf_counter() - started:.2f} s (not counted)"
    )

    for label, spec in SPECS.items():
        try:
            started = time.perf_counter()
            tokenizer = load_tokenizer(spec)
            load_s = time.perf_counter() - started
        except (InputError, ImportError) as exc:
            print(f"{label:15s} skipped: {exc}")
            continue
        total_s = best_of(args.repeat, tokenize_and_summarize, tokenizer, chats)
        tokenize_s = best_of(args.repeat, tokenize, tokenizer, chats)
        token_ids = tokenize(tokenizer, chats)
        fft_s = best_of(args.repeat, summarize, token_ids)

        mean_tokens = sum(map(len, itertools.chain.from_iterable(token_ids))) / n_items
        verdict = "OK" if total_s < GOAL_S else "OVER"
        print(
            f"{label:15s} {n_items / total_s:8.0f} items/s  total {total_s:5.2f} s vs goal {GOAL_S:.0f} s [{verdict}]  "
            f"tokenize only {tokenize_s:5.2f} s  fft only {fft_s:5.2f} s  "
            f"ratio total/tokenize {total_s / tokenize_s:4.2f}  load {load_s:4.2f} s  mean {mean_tokens:.0f} tokens/prompt"
        )


if __name__ == "__main__":
    main()
