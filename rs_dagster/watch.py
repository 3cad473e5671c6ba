"""A watched model's night: its canary (the first `n` items of each point of its `watch` scope, plus
`fresh_seeds` extra item sets drawn at the same points from seeds that are never the published one),
the requests it sends, what the night will cost before anything is sent, and the rows it stores.

The night enters the request key of these requests only (execution.cache.request_hash), so each night is a
new, complete set of samples on the same items while every other cached answer stays cached. `rs eval
--fresh-seeds` uses the same canary with an `eval:<salt>` night whose requests are not salted: its published
items are the evaluation's own answers (from the cache), and only the fresh items are asked."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from rs_dagster.errors import InputError
from rs_dagster.execution.cache import ResponseCache, request_hash
from rs_dagster.execution.responses import CompletionResult
from rs_dagster.execution.runner import CompletionRequest, endpoint_of
from rs_dagster.models.registry import Model, Watch
from rs_dagster.prompting.prompts import prompt_frame
from rs_dagster.scoring.outcomes import SCORING_VERSION, score_sample
from rs_dagster.stats.drift import EVAL_NIGHT, FRESH_PREFIX, PUBLISHED
from rs_dagster.tasks.base import canonical_json, sha256_hex
from rs_dagster.tasks.cases import test_case_frame
from rs_dagster.tasks.manifold import Point, TaskSpec
from rs_dagster.tasks.selection import select_points

CHARS_PER_TOKEN = 4  # the estimate of prompt tokens before a night is sent (a tokenizer-free rule of thumb)


def night_of(when: datetime) -> str:
    """The night's label: the schedule's execution date (UTC)."""
    return f"{when:%Y-%m-%d}"


def is_watched_night(night: str) -> bool:
    return not night.startswith(EVAL_NIGHT)


def canary_scope(model: Model) -> Watch:
    """The model's `watch`, or for a model that is not watched (`rs eval --fresh-seeds`) its suite's points
    with as many items per point as a numeric suite precision asks (else the watch default)."""
    if model.entry.watch is not None:
        return model.entry.watch
    suite = model.entry.suite
    n = suite.precision if isinstance(suite.precision, int) else Watch().n
    return Watch(tasks=suite.tasks, tiers=suite.tiers, surfaces=suite.surfaces, projections=suite.projections, points=suite.points,
                 n=n, fresh_seeds=suite.fresh_seeds)


def canary_tasks(watch: Watch, task_names: list[str]) -> list[str]:
    return [t for t in (watch.tasks or task_names) if t in task_names]


def fresh_seed(global_seed: int, salt: str, k: int) -> int:
    """The global seed of the k-th fresh item set under `salt`: hashed, so never the published seed."""
    seed = int(sha256_hex(canonical_json(["fresh item set", global_seed, salt, k]))[:15], 16)
    return seed if seed != global_seed else seed + 1


def fresh_item_set(salt: str, k: int) -> str:
    return f"{FRESH_PREFIX}{salt}:{k}"


def canary_points(spec: TaskSpec, watch: Watch) -> list[Point]:
    return select_points(spec, watch.selection)


def fresh_cases(spec: TaskSpec, points: list[Point], n: int, salt: str, sets: int, published: pl.DataFrame) -> pl.DataFrame:
    """`sets` item sets of `n` items per point drawn from fresh seeds, tagged with their item_set; an item
    whose question is also a published item of its point is left out (a small parameter space)."""
    frames = []
    for k in range(sets):
        drawn = test_case_frame(spec, points, n, fresh_seed(spec.doc.global_seed, salt, k))
        drawn = drawn.join(published.select("point_id", "question"), on=["point_id", "question"], how="anti")
        frames.append(drawn.with_columns(item_set=pl.lit(fresh_item_set(salt, k))))
    return pl.concat(frames) if frames else pl.DataFrame()


@dataclass(frozen=True)
class NightCost:
    """What a night will cost, known before it is sent."""

    items: int
    requests: int  # not answered yet (the rest come from the response cache)
    prompt_tokens_estimate: int  # of the requests, at CHARS_PER_TOKEN characters a token
    completion_tokens_bound: int | None  # requests × the sampler's max_tokens; None: no max_tokens set

    def describe(self) -> str:
        bound = f"at most {self.completion_tokens_bound:,} completion tokens" if self.completion_tokens_bound is not None else "completion tokens unbounded (no max_tokens)"
        return f"{self.requests:,} requests for {self.items:,} items, about {self.prompt_tokens_estimate:,} prompt tokens, {bound}"


@dataclass
class CanaryPlan:
    items: pl.DataFrame  # test-case columns + item_set, prompt_hash, messages_json
    requests: list[CompletionRequest] = field(default_factory=list)  # one per distinct key; the Runner reads the cache first
    keys: list[str] = field(default_factory=list)  # each item's request key, in the order of `items`
    cost: NightCost | None = None


def plan_night(model: Model, spec: TaskSpec, published: pl.DataFrame, fresh: pl.DataFrame, night: str, cache: ResponseCache,
               max_requests: int) -> CanaryPlan:
    """The night's requests (one per item; an item asked twice at two points is sent once) and its cost;
    an InputError naming `max_requests` when the night would send more."""
    items = pl.concat([published.with_columns(item_set=pl.lit(PUBLISHED)), *([fresh] if not fresh.is_empty() else [])], how="diagonal_relaxed")
    prompts = prompt_frame(model, spec, items).select("test_case_id", "prompt_hash", "messages_json")
    items = items.join(prompts, on="test_case_id", how="left")
    endpoint, params = endpoint_of(model), model.sampler.request_params()
    salt = night if is_watched_night(night) else None
    plan = CanaryPlan(items)
    to_send, prompt_chars = 0, 0
    for messages_json in items["messages_json"]:
        messages = json.loads(messages_json)
        key = request_hash(endpoint.base_url, endpoint.served_model, messages, params, 0, night=salt)
        if key not in plan.keys:
            plan.requests.append(CompletionRequest(key, messages))
            if cache.get(key) is None:
                to_send += 1
                prompt_chars += len(messages_json)
        plan.keys.append(key)
    max_tokens = params.get("max_tokens")
    plan.cost = NightCost(items.height, to_send, prompt_chars // CHARS_PER_TOKEN, to_send * max_tokens if isinstance(max_tokens, int) else None)
    if to_send > max_requests:
        raise InputError(f"models.{model.name}.watch.max_requests is {max_requests}, but the night {night} of {spec.name} would send "
                         f"{plan.cost.describe()}; lower watch.n or watch.fresh_seeds, narrow the points, or raise max_requests")
    return plan


def canary_rows(plan: CanaryPlan, results: list[CompletionResult], model: Model, spec: TaskSpec, night: str, run_id: str) -> pl.DataFrame:
    """One canary_answers row per item: its answer (sent this night, or from the cache) scored by the task."""
    answered = {r.request_hash: r for r in results}
    rows = []
    for case, key in zip(plan.items.iter_rows(named=True), plan.keys, strict=True):
        answer = answered[key]
        scored = score_sample(spec.task, case["answer"], json.loads(case["metadata_json"]), answer.answer_text, answer.finish_reason, answer.error)
        rows.append({
            "model": model.name, "task": spec.name, "night": night, "item_set": case["item_set"],
            "test_case_id": case["test_case_id"], "point_id": case["point_id"], "tiers": case["tiers"], "request_hash": key,
            "outcome": scored.outcome, "guess_chance": case["guess_chance"],
            **{c: getattr(answer, c) for c in ("answer_text", "finish_reason", "completion_tokens", "error", "latency_s", "from_cache",
                                               "response_model", "system_fingerprint", "served_metadata_json")},
            "model_version": model.version, "spec_version": spec.version, "scoring_version": SCORING_VERSION, "dagster_run_id": run_id,
        })
    return pl.DataFrame(rows, schema_overrides=CANARY_DTYPES)


CANARY_DTYPES: dict[str, pl.DataType | type[pl.DataType]] = {
    **{c: pl.String for c in ("answer_text", "finish_reason", "error", "response_model", "system_fingerprint", "served_metadata_json")},
    "completion_tokens": pl.Int64, "latency_s": pl.Float64, "tiers": pl.List(pl.String),
}
