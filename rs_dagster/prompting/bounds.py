"""How much one `rs eval` may ask for: at most MAX_REPEATS samples per item, and at most a maximum number of
requests per command (--max-requests, RS_MAX_REQUESTS, default DEFAULT_MAX_REQUESTS), counted from the
resolved scope, less the answers already stored, before anything is registered, generated or stored. Without them `--repeats 1000000000`
(or `--samples 1000000000`) was accepted and grew past gigabytes of memory before the first request."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from rs_dagster.errors import InputError
from rs_dagster.models.registry import MAX_REPEATS, Model, load_models
from rs_dagster.prompting.scope import Scope, Selected, evaluation_pairs, selected_scope
from rs_dagster.settings import Settings
from rs_dagster.storage.reads import Wanted, stored_answers
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import load_manifolds

DEFAULT_MAX_REQUESTS = 100_000
MAX_REQUESTS_ENV = "RS_MAX_REQUESTS"


def check_repeats(repeats: int | None) -> None:
    """`--repeats`: between 1 and MAX_REPEATS samples per item."""
    if repeats is not None and not 1 <= repeats <= MAX_REPEATS:
        raise InputError(f"--repeats {repeats}: expected a positive number of samples per item, at most {MAX_REPEATS:,}")


def request_limit(given: int | None) -> int:
    """The maximum requests of one command: `given` (--max-requests), else RS_MAX_REQUESTS, else the default."""
    if given is not None:
        if given < 1:
            raise InputError(f"--max-requests {given}: expected a positive number of requests")
        return given
    text = os.environ.get(MAX_REQUESTS_ENV, "").strip().replace("_", "")
    if not text:
        return DEFAULT_MAX_REQUESTS
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"{MAX_REQUESTS_ENV}={os.environ[MAX_REQUESTS_ENV]!r}: expected a positive whole number of requests")
    return int(text)


@dataclass(frozen=True)
class Size:
    """What a scope can ask at most, over its model × task pairs."""

    pairs: int
    points: int
    items: int  # items per point at the cap of each point's precision level, summed
    repeats: int  # the most samples per item of any pair
    requests: int  # items × samples per item, summed over the pairs


def evaluation_size(selections: Sequence[Selected]) -> Size:
    """The size of the model × task pairs whose selected scopes are `selections`."""
    items = [sum(s.max_items.values()) for s in selections]
    return Size(
        pairs=len(selections), points=sum(len(s.points) for s in selections), items=sum(items),
        repeats=max((s.repeats for s in selections), default=0),
        requests=sum(n * s.repeats for n, s in zip(items, selections, strict=True)),
    )


def check_evaluation_size(
    settings: Settings, model_names: Sequence[str], task_names: Sequence[str] | None, scope: Scope,
    max_requests: int | None = None, pending: Model | None = None,
) -> Size:
    """Refuse an evaluation whose scope could send more requests than the maximum (`max_requests`, else
    RS_MAX_REQUESTS, else DEFAULT_MAX_REQUESTS). `pending`: a model about to be registered (not saved yet),
    evaluated in place of its saved entry. Unknown names and impossible scopes fail here too, the same way
    as in the evaluation itself."""
    limit = request_limit(max_requests)
    models = load_models(settings)
    if pending is not None:
        models[pending.name] = pending
    pairs = evaluation_pairs(load_manifolds(settings.tasks_dir), models, model_names, task_names, scope)
    selections = [selected_scope(spec, model, scope) for model, spec in pairs]
    size = evaluation_size(selections)
    if size.requests <= limit:
        return size
    # Only what is not stored yet is sent: a lab that holds most of a large scope may evaluate it again.
    warehouse = Warehouse.from_settings(settings)
    with warehouse.reading():
        stored = sum(stored_answers(warehouse, [Wanted(model.name, spec.name, model.version, spec.version, selected.max_items, selected.repeats)
                                                for (model, spec), selected in zip(pairs, selections, strict=True)]).values())
    if size.requests - stored > limit:
        raise InputError(
            f"this evaluation could send up to {size.requests - stored:,} requests ({size.pairs} model × task pair(s), {size.points:,} grid "
            f"points, {size.items:,} items, up to {size.repeats:,} sample(s) per item, {stored:,} answers stored), more than the maximum "
            f"of {limit:,} requests per command; narrow the scope (--tasks, --tier, --samples or --precision, --repeats) or allow more "
            f"with --max-requests N (or {MAX_REQUESTS_ENV}=N). Nothing was registered, generated or run"
        )
    return size
