"""The prompts rows of a model × task: the exact chat messages the model's template renders for each
item, with their hash; kept per (model version, task version) like the results they produce."""

from __future__ import annotations

import json

import polars as pl

from rs_dagster.models.registry import Model
from rs_dagster.prompting.templates import prompt_hash
from rs_dagster.tasks.base import Item
from rs_dagster.tasks.manifold import TaskSpec

PROMPT_IDENTITY = ("test_case_id", "model_version", "spec_version")


def prompt_frame(model: Model, spec: TaskSpec, cases: pl.DataFrame) -> pl.DataFrame:
    """One prompts row per test case of `cases`: the messages the model's template renders, as sent."""
    rows = []
    for case in cases.iter_rows(named=True):
        item = Item(case["question"], case["answer"], case["guess_chance"], json.loads(case["metadata_json"]))
        params = json.loads(case["params_json"])
        messages = model.template.render(spec.task, item, spec.name, params, spec.doc.global_seed)
        rows.append(
            {
                "model": model.name,
                "task": spec.name,
                "test_case_id": case["test_case_id"],
                "point_id": case["point_id"],
                "prompt_hash": prompt_hash(messages),
                "messages_json": json.dumps(messages, ensure_ascii=False),
                "template": model.entry.template,
                "template_version": model.template_version,
                "model_version": model.version,
                "spec_version": spec.version,
            }
        )
    return pl.DataFrame(rows)
