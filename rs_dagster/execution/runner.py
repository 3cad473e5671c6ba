"""Asking an OpenAI-compatible endpoint to answer many prompts: an adaptive concurrency limit
(execution.limiter), retries with backoff (honouring Retry-After), a per-request deadline, optional
thinking budgets, and the response cache consulted first; what comes back becomes a result in
execution.responses. A thinking budget (execution.budget) is the Runner's policy:
an answer phase continues the assistant turn whose thought the budget closed.

Every request ends as a result: a response, or an error with its reason once the retry policy is spent.
Errors are data about the endpoint, never answers, and never cached, so a later run retries only them.
Once a stop is requested (rs_dagster.interrupts: Ctrl-C), no request or retry is sent any more: those in
flight end as results (on_result), and `run` then raises Interrupted.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import openai

from rs_dagster.errors import EndpointError
from rs_dagster.execution.budget import CHAT, ThinkingBudget, continued_messages
from rs_dagster.execution.cache import ResponseCache
from rs_dagster.execution.limiter import AdaptiveLimit
from rs_dagster.execution.responses import (
    Answer,
    CompletionResult,
    MalformedResponse,
    budget_forced,
    connection_reason,
    continued,
    parse_chat,
    parse_completion,
    retry_after,
    status_reason,
)
from rs_dagster.execution.shares import RENEW_EVERY_S, EndpointShares, share
from rs_dagster.interrupts import Interrupted, stop_requested

if TYPE_CHECKING:
    from rs_dagster.models.registry import Model

CHAT_ROUTE, COMPLETIONS_ROUTE = "/chat/completions", "/completions"
_CHAT_ONLY = ("reasoning_effort",)  # chat parameters a raw completion has no use for


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    served_model: str
    concurrency: int = 4  # the most requests in flight; 429s lower the limit for a while
    timeout_s: float = 300.0  # deadline of one attempt, from sending to the last byte
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0  # also caps a Retry-After
    max_text_chars: int = 1_000_000  # longer answer or reasoning text keeps its head and tail, marked


def endpoint_of(model: Model) -> Endpoint:
    """The endpoint a registered model is served by, with its entry's operational limits."""
    entry = model.entry
    return Endpoint(
        base_url=entry.base_url,
        served_model=entry.served_model,
        concurrency=entry.concurrency,
        timeout_s=entry.timeout_s,
        max_retries=entry.max_retries,
    )


@dataclass(frozen=True)
class CompletionRequest:
    request_hash: str
    messages: list[dict[str, str]]


class _Failed(Exception):
    """The retry policy is spent (or a client error will not change on retry): the last reason."""

    def __init__(self, reason: str, attempts: int):
        super().__init__(reason)
        self.reason, self.attempts = reason, attempts


class _Unsent(Exception):
    """A stop was requested (rs_dagster.interrupts) before this request, or its next attempt, was sent."""


class _Waits:
    """One request's time not in flight (queue_wait_s): for a concurrency slot and any Retry-After pause
    before each attempt, and the backoff between attempts."""

    def __init__(self) -> None:
        self.s = 0.0

    def in_flight(self, started: float) -> float:
        """latency_s: the request's wall time since `started` less its waits."""
        return max(0.0, time.perf_counter() - started - self.s)


class Runner:
    """Sends requests to one endpoint. `on_result` is called as each result arrives; `limit` holds
    the adaptive concurrency limit of the last run (how low 429s drove it, how many there were). With
    `shares`, the endpoint's concurrency is split with the other processes sending to it. `budget` is the
    thinking-budget policy (None: one phase under the request params' max_tokens); the budget is never
    part of `request_params`, which are sent as they are."""

    def __init__(
        self,
        endpoint: Endpoint,
        api_key: str,
        request_params: dict[str, Any],
        cache: ResponseCache,
        on_result: Callable[[CompletionResult], None] | None = None,
        shares: EndpointShares | None = None,
        budget: ThinkingBudget | None = None,
    ):
        self.endpoint = endpoint
        self.shares = shares
        self.most_members = 1  # the most processes seen sharing the endpoint during the last run
        self.cache = cache
        self.on_result = on_result or (lambda result: None)
        self.limit = AdaptiveLimit(endpoint.concurrency)
        self._api_key = api_key
        if {"think_budget", "answer_budget"} & request_params.keys():
            raise ValueError("a thinking budget is the Runner's policy: pass budget=ThinkingBudget(...), not request params")
        self.budget = budget
        self.request_params = dict(request_params)
        # The JSON body as the SDK would send it: extra_body merges into the top level.
        sent = {k: v for k, v in request_params.items() if k != "extra_body"}
        body = {"model": endpoint.served_model, **sent, **request_params.get("extra_body", {})}
        if budget is None:
            self._thinking_body = body
        else:
            unstopped = {k: v for k, v in body.items() if k != "stop"}  # a stop string must not end the reasoning
            self._thinking_body = {**unstopped, "max_tokens": budget.think_tokens}
            if budget.continuation == CHAT:  # vLLM / SGLang: continue the last (assistant) message
                self._answer_body = {
                    **body, "max_tokens": budget.answer_tokens, "continue_final_message": True, "add_generation_prompt": False
                }
            else:
                raw = {k: v for k, v in body.items() if k not in _CHAT_ONLY}
                self._answer_body = {**raw, "max_tokens": budget.answer_tokens}

    def run(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult]:
        return asyncio.run(self._run_all(requests))

    async def _run_all(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult]:
        results: list[CompletionResult | None] = [None] * len(requests)
        pending = []
        for i, request in enumerate(requests):
            cached = self.cache.get(request.request_hash)
            if cached is not None:  # its latency_s is the original request's; it waited for nothing in this run
                results[i] = hit = CompletionResult(**{**cached, "from_cache": True, "queue_wait_s": None})
                self.on_result(hit)
            else:
                pending.append(i)
        if not pending:
            return results  # type: ignore[return-value]
        self.limit = AdaptiveLimit(self.endpoint.concurrency)
        self.most_members = 1
        client = openai.AsyncOpenAI(
            base_url=self.endpoint.base_url, api_key=self._api_key, timeout=self.endpoint.timeout_s, max_retries=0,
            http_client=openai.DefaultAioHttpClient(),
        )
        member = self.shares.join(self.endpoint.base_url) if self.shares else None
        if member:
            self._take_share(member)
        rebalancing = asyncio.create_task(self._rebalance(member)) if member else None
        try:
            await self._preflight(client)

            unsent = 0

            async def one(i: int) -> None:
                nonlocal unsent
                try:
                    results[i] = result = await self._complete(client, requests[i])
                except _Unsent:
                    unsent += 1
                    return
                self.on_result(result)

            await asyncio.gather(*(one(i) for i in pending))
            if unsent:  # the requests in flight have landed; the rest were never sent
                raise Interrupted(f"stop requested: {unsent} of {len(pending)} requests not sent")
        finally:
            if rebalancing and self.shares and member:
                rebalancing.cancel()
                self.shares.leave(member)
            await client.close()
        return results  # type: ignore[return-value]

    def _take_share(self, member: str) -> None:
        assert self.shares is not None  # a member exists only where shares do
        members = self.shares.renew(member)
        self.most_members = max(self.most_members, members)
        self.limit.set_ceiling(share(self.endpoint.concurrency, members))

    async def _rebalance(self, member: str) -> None:
        """Keep this process's ceiling at its share of the endpoint while others come and go."""
        while True:
            await asyncio.sleep(RENEW_EVERY_S)
            self._take_share(member)

    async def _preflight(self, client: openai.AsyncOpenAI) -> None:
        """Fail fast, with a clear message, when nothing listens at the endpoint."""
        try:
            await client.models.list()
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise EndpointError(
                f"cannot reach the endpoint {self.endpoint.base_url}: {self._connection_reason(exc)}; "
                "is the server running and the base_url right (host, port, http or https)? Nothing was recorded."
            ) from None
        except Exception:
            pass  # it answers; whether /models works (some servers lack it) the requests themselves will tell

    async def _complete(self, client: openai.AsyncOpenAI, request: CompletionRequest) -> CompletionResult:
        """Phase 1, and the answer phase when the budget ran out inside the reasoning; cache a success.
        latency_s is the time in flight; the waits before and between sends are queue_wait_s (_Waits)."""
        started = time.perf_counter()
        waits = _Waits()
        attempts = 0
        try:
            thinking, attempts = await self._ask(client, CHAT_ROUTE, {**self._thinking_body, "messages": request.messages}, waits=waits)
            if self.budget is not None and thinking.still_thinking:
                final, more = await self._ask(client, *self._answer_request(request, thinking), attempts, waits)
                attempts += more
                fields = budget_forced(thinking, continued(final))
            else:
                fields = thinking.fields()
        except _Failed as failure:
            return CompletionResult(
                request_hash=request.request_hash,
                answer_text=None,
                reasoning_text=None,
                finish_reason=None,
                prompt_tokens=None,
                completion_tokens=None,
                reasoning_tokens=None,
                latency_s=waits.in_flight(started),
                attempts=failure.attempts,
                error=self._redacted(failure.reason),
                queue_wait_s=waits.s,
            )
        result = CompletionResult(
            request_hash=request.request_hash, latency_s=waits.in_flight(started), attempts=attempts, error=None,
            queue_wait_s=waits.s, **fields,
        )
        record = asdict(result)
        record.pop("from_cache")
        record.pop("queue_wait_s")  # the load of this run, not a property of the answer
        self.cache.put(request.request_hash, record)
        return result

    def _answer_request(self, request: CompletionRequest, thinking: Answer) -> tuple[str, dict[str, Any]]:
        """Route and body of the answer phase: the same assistant turn, its thought closed, continued."""
        reasoning = thinking.reasoning_text or ""
        assert self.budget is not None  # an answer phase runs only under a thinking budget
        if self.budget.continuation == CHAT:
            return CHAT_ROUTE, {**self._answer_body, "messages": continued_messages(request.messages, reasoning)}
        return COMPLETIONS_ROUTE, {**self._answer_body, "prompt": self.budget.continued_prompt(request.messages, reasoning)}

    def _connection_reason(self, exc: BaseException) -> str:
        """Why no reply came, by kind (refused, DNS, TLS, timed out; responses.connection_reason)."""
        return connection_reason(exc, self.endpoint.base_url, self.endpoint.timeout_s)

    def _redacted(self, reason: str) -> str:
        """An error reason fit to store: a server may quote the credentials back."""
        return reason.replace(self._api_key, "<api key>") if self._api_key else reason

    async def _ask(
        self, client: openai.AsyncOpenAI, route: str, body: dict[str, Any], attempts_before: int = 0, waits: _Waits | None = None
    ) -> tuple[Answer, int]:
        """One chat (or raw text) completion under the retry policy: (answer, attempts made), or _Failed with the
        last reason (and the attempts of both phases). The time spent waiting for a slot and backing off is
        added to `waits`.

        It goes through the client's documented `post` for endpoints it does not type, with the JSON
        body and reply as plain data: the SDK's request transform and response models cost about a
        quarter of its CPU time per request, and a saturated client is CPU-bound. Authentication,
        status errors (RateLimitError, ...) and connection handling stay the SDK's."""
        endpoint = self.endpoint
        waits = waits if waits is not None else _Waits()
        reason = "no attempt made"
        for attempt in range(1, endpoint.max_retries + 2):
            pause: float | None = None  # a Retry-After: the limit's pause covers it for every request
            if stop_requested():
                raise _Unsent
            queued = time.perf_counter()
            window = await self.limit.acquire()
            waits.s += time.perf_counter() - queued
            if stop_requested():  # requested while this one waited for a slot
                self.limit.release()
                raise _Unsent
            try:
                async with asyncio.timeout(endpoint.timeout_s):
                    data = await client.post(route, body=body, cast_to=object)
                parse = parse_chat if route == CHAT_ROUTE else parse_completion
                answer = parse(data, endpoint.max_text_chars)
            except openai.RateLimitError as exc:
                reason, pause = status_reason(exc), retry_after(exc, endpoint.backoff_max_s)
                self.limit.on_rate_limited(window, pause)
            except openai.APIStatusError as exc:
                reason, pause = status_reason(exc), retry_after(exc, endpoint.backoff_max_s)
                if exc.status_code < 500 and exc.status_code not in (408, 409):
                    raise _Failed(reason, attempts_before + attempt) from None  # a client error will not change on retry
                self.limit.on_trouble(pause)
            except (openai.APIConnectionError, TimeoutError) as exc:  # APITimeoutError included: no reply at all
                reason = self._connection_reason(exc)
                self.limit.on_trouble(None)
            except MalformedResponse as exc:
                reason = str(exc)
            except Exception as exc:  # a body the client could not decode (invalid JSON, wrong shapes)
                reason = f"malformed response: {type(exc).__name__}: {exc}"
            else:
                self.limit.on_success(window)
                return answer, attempt
            finally:
                self.limit.release()
            if attempt <= endpoint.max_retries and pause is None:
                backoff = min(endpoint.backoff_max_s, endpoint.backoff_base_s * 2 ** (attempt - 1))
                backing_off = time.perf_counter()
                await asyncio.sleep(backoff * (0.5 + random.random()))
                waits.s += time.perf_counter() - backing_off
        raise _Failed(reason, attempts_before + endpoint.max_retries + 1)
