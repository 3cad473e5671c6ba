"""The parser held to real model outputs: tests/data/real_outputs/ holds completions of real models, each
with a hand-checked label of what the model answered (a normalised value, `<ambiguous>` for a hedge, or
`<none>` when no answer was stated). The cascade must read that label in at least 99% of the items of
every task; the per-task rates are printed (`pytest -s tests/test_real_outputs.py`).

Sources (tests/data/real_outputs/README.md): the bundled SmolLM2-135M's own outputs to the lab's prompts
under six templates (Apache-2.0), and BIG-Bench Hard completions of seven other models published by
kuk/simple-evals-ru (MIT) on the eight BBH tasks whose answers take one of our tasks' forms."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from rs_dagster.scoring.parsing import Parsed
from rs_dagster.tasks import get_task

CORPUS = Path(__file__).resolve().parent / "data" / "real_outputs"
TASKS = ("arithmetic", "boolean", "brackets", "cars", "dates", "letters", "movies", "objects", "sequence", "shapes", "shuffle", "sort", "tables")
REQUIRED_RATE = 0.99


def corpus() -> list[dict]:
    return [json.loads(line) for path in sorted(CORPUS.glob("*.jsonl")) for line in path.read_text().splitlines() if line.strip()]


def reading(parsed: Parsed) -> str:
    """What the cascade read, in the labels' terms."""
    if parsed.is_ambiguous:
        return "<ambiguous>"
    return "<none>" if parsed.value is None else parsed.value


def expected(item: dict) -> str:
    """The label in the parser's normal form (labels are written normalised; this folds case and spacing)."""
    label = item["label"]
    if label.startswith("<"):
        return label
    return get_task(item["task"]).parser_for(item["metadata"]).normalize(label) or label


def read_rates(items: list[dict]) -> dict[str, tuple[int, int, list[str]]]:
    """Per task: items read as labelled, items, and the ids of the others."""
    rates: dict[str, tuple[int, int, list[str]]] = {}
    by_task: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        by_task[item["task"]].append(item)
    for task, group in sorted(by_task.items()):
        missed = [i["id"] for i in group if reading(get_task(task).parse(i["completion"], i["metadata"])) != expected(i)]
        rates[task] = (len(group) - len(missed), len(group), missed)
    return rates


def test_corpus_covers_every_task_with_a_thousand_real_completions():
    items = corpus()
    assert len(items) >= 1000
    assert {item["task"] for item in items} == set(TASKS)
    assert len({item["id"] for item in items}) == len(items)
    for item in items:
        assert item["label"] and isinstance(item["completion"], str) and item["source"] and item["model"], item["id"]


def test_the_cascade_reads_what_the_model_answered():
    rates = read_rates(corpus())
    for task, (read, total, _) in rates.items():
        print(f"{task:<11} {read:>4}/{total:<4} {read / total:7.2%}")
    low = {task: (f"{read}/{total}", missed) for task, (read, total, missed) in rates.items() if read / total < REQUIRED_RATE}
    assert not low, low


@pytest.mark.parametrize("label", ["<ambiguous>", "<none>"])
def test_the_corpus_holds_hedges_and_unanswered_outputs(label):
    assert any(item["label"] == label for item in corpus())
