"""Asking an OpenAI-compatible endpoint to answer many prompts: an adaptive concurrency limit, retries
with backoff (honouring Retry-After), a per-request deadline, optional thinking budgets, and
the response cache consulted first. A thinking budget (execution.budget) is the Runner's policy:
an answer phase continues the assistant turn whose thought the budget closed.

Every request ends as a result: a response, or an error with its reason once the retry policy is spent.
Errors are data about the endpoint, never answers, and never cached, so a later run retries only them.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import openai

from rs_dagster.errors import EndpointError
from rs_dagster.execution.budget import CHAT, ThinkingBudget, continued_messages
from rs_dagster.execution.cache import ResponseCache
from rs_dagster.execution.reasoning import split_reasoning
from rs_dagster.execution.shares import RENEW_EVERY_S, EndpointShares, share

SINGLE, BUDGET_FORCED = "single", "budget_forced"  # CompletionResult.answer_phase
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


@dataclass(frozen=True)
class CompletionRequest:
    request_hash: str
    messages: list[dict[str, str]]


@dataclass
class CompletionResult:
    request_hash: str
    answer_text: str | None
    reasoning_text: str | None
    finish_reason: str | None
    prompt_tokens: int | None  # token counts add up both phases of a budget-forced answer
    completion_tokens: int | None
    reasoning_tokens: int | None
    latency_s: float
    attempts: int  # HTTP requests made, over both phases
    error: str | None
    from_cache: bool = False
    answer_tokens: int | None = None  # completion tokens that were answer, not reasoning, when known
    answer_phase: str | None = None  # SINGLE or BUDGET_FORCED; None for errors and older cache entries


class AdaptiveLimit:
    """AIMD limit on one endpoint's requests in flight, between 1 and `ceiling` (where it starts).

    A 429 halves it, once per window: 429s to requests sent before the last cut report the congestion
    that cut already answered. Each success of the current window while the limit is full adds
    1/limit, so a clean window of successes adds about one slot; an endpoint that is not kept busy
    gives no evidence for more.
    5xx, timeouts and broken connections do not shrink it (they say little about load) but hold growth
    until a window of successes has passed. A Retry-After pauses every new request to the endpoint."""

    def __init__(self, ceiling: int):
        self.ceiling = ceiling
        self.limit = float(ceiling)
        self.lowest = float(ceiling)
        self.in_flight = 0
        self.rate_limited = 0
        self._window = 0
        self._hold = 0
        self._resume_at = 0.0
        self._waiters: deque[asyncio.Future] = deque()

    def _has_room(self) -> bool:
        return self.in_flight < max(1, int(self.limit))

    async def acquire(self) -> int:
        """Wait for a slot (first come, first served) and the end of any pause; return the window."""
        loop = asyncio.get_running_loop()
        if self._has_room() and not self._waiters:
            self.in_flight += 1
        else:
            waiter = loop.create_future()
            self._waiters.append(waiter)
            await waiter  # _admit counted this request in
        while (pause := self._resume_at - loop.time()) > 0:
            await asyncio.sleep(pause)
        return self._window

    def release(self) -> None:
        self.in_flight -= 1
        self._admit()

    def _admit(self) -> None:
        while self._waiters and self._has_room():
            waiter = self._waiters.popleft()
            if not waiter.done():  # its task was cancelled
                self.in_flight += 1
                waiter.set_result(None)

    def on_success(self, window: int) -> None:
        """Call before release(). Grows the limit only while it is what holds requests back, and only
        for requests sent under it (those sent before a cut say nothing about the new limit)."""
        if window != self._window or (self.in_flight < int(self.limit) and not self._waiters):
            return
        if self._hold:
            self._hold -= 1
        elif self.limit < self.ceiling:
            self.limit = min(self.ceiling, self.limit + 1 / self.limit)
            self._admit()

    def set_ceiling(self, ceiling: int) -> None:
        """A new most-in-flight (this process's share of the endpoint): a lower one applies at once,
        a higher one is grown into by successes."""
        self.ceiling = ceiling
        if self.limit > ceiling:
            self.limit = float(ceiling)
            self.lowest = min(self.lowest, self.limit)

    def on_rate_limited(self, window: int, retry_after: float | None) -> None:
        self.rate_limited += 1
        self._pause(retry_after)
        if window == self._window:
            self._window += 1
            self.limit = max(1.0, self.limit / 2)
            self.lowest = min(self.lowest, self.limit)

    def on_trouble(self, retry_after: float | None) -> None:
        self._pause(retry_after)
        self._hold = max(self._hold, math.ceil(self.limit))

    def _pause(self, seconds: float | None) -> None:
        if seconds:
            self._resume_at = max(self._resume_at, asyncio.get_running_loop().time() + seconds)


@dataclass
class _Answer:
    """One parsed chat completion."""

    answer_text: str | None
    reasoning_text: str | None
    reasoning_inline: bool  # the reasoning came as <think> in the content, not in a separate field
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    reasoning_tokens: int | None

    @property
    def still_thinking(self) -> bool:
        """Cut off by max_tokens before the model left its reasoning."""
        return self.finish_reason == "length" and not self.answer_text and bool(self.reasoning_text)

    @property
    def answer_tokens(self) -> int | None:
        if self.completion_tokens is None:
            return None
        if self.reasoning_tokens is not None:
            return _count(self.completion_tokens - self.reasoning_tokens)  # None if the server miscounted
        return None if self.reasoning_text else self.completion_tokens

    def fields(self) -> dict[str, Any]:
        return {
            "answer_text": self.answer_text,
            "reasoning_text": self.reasoning_text,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "answer_tokens": self.answer_tokens,
            "answer_phase": SINGLE,
        }


class _Malformed(Exception):
    """A 200 response that holds no usable answer."""


class _Failed(Exception):
    def __init__(self, reason: str, attempts: int):
        super().__init__(reason)
        self.reason, self.attempts = reason, attempts


def _retry_after(exc: openai.APIStatusError, cap: float) -> float | None:
    """Seconds from retry-after-ms, or Retry-After as seconds or an HTTP date; capped."""
    headers = exc.response.headers if exc.response is not None else {}
    seconds = None
    try:
        if "retry-after-ms" in headers:
            seconds = float(headers["retry-after-ms"]) / 1000
        elif "retry-after" in headers:
            value = headers["retry-after"]
            try:
                seconds = float(value)
            except ValueError:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None
    return None if seconds is None else min(cap, max(0.0, seconds))


def _status_reason(exc: openai.APIStatusError) -> str:
    """`HTTP 503: <the server's error message>`, from a JSON error body or the start of a text one."""
    body = exc.body
    detail = body.get("message") if isinstance(body, dict) else body
    detail = " ".join(str(detail).split())[:300] if detail else ""
    return f"HTTP {exc.status_code}: {detail}" if detail else f"HTTP {exc.status_code}"


def _innermost(exc: BaseException) -> str:
    """The deepest error in the chain that has a message: the socket's own words."""
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and len(chain) < 10:
        chain.append(link)
        link = link.__cause__ or link.__context__
    described = next((e for e in reversed(chain) if str(e)), chain[0])
    return f"{type(described).__name__}: {described}"


def _cut(text: str | None, limit: int) -> str | None:
    """Keep an over-long text's head and tail (where answers end), with a marker of what was cut."""
    if text is None or len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut by rs-dagster ...]\n{text[-half:]}"


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _parse_response(data: Any, max_chars: int) -> _Answer:
    """What we keep from a chat completion's JSON; anything without a usable answer is _Malformed."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices, list):
        raise _Malformed("response has no choices")
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message")
    if not isinstance(message, dict):
        raise _Malformed("response choice has no message")
    content = _text(message.get("content"))
    reasoning_field = _text(message.get("reasoning_content")) or _text(message.get("reasoning"))
    finish_reason = _text(choice.get("finish_reason"))
    if content is None and not reasoning_field and finish_reason != "length":
        raise _Malformed("response message content is null")
    answer, reasoning = split_reasoning(content, reasoning_field)
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    details = usage.get("completion_tokens_details")
    details = details if isinstance(details, dict) else {}
    return _Answer(
        answer_text=_cut(answer, max_chars),
        reasoning_text=_cut(reasoning, max_chars),
        reasoning_inline=reasoning_field is None,
        finish_reason=finish_reason,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        reasoning_tokens=_count(details.get("reasoning_tokens")),
    )


def _parse_completion(data: Any, max_chars: int) -> _Answer:
    """What we keep from a raw (text) completion's JSON: the continued text, usage."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices, list):
        raise _Malformed("response has no choices")
    choice = choices[0] if isinstance(choices[0], dict) else {}
    text = _text(choice.get("text"))
    finish_reason = _text(choice.get("finish_reason"))
    if text is None and finish_reason != "length":
        raise _Malformed("response choice has no text")
    answer, reasoning = split_reasoning(text, None)
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return _Answer(
        answer_text=_cut(answer, max_chars),
        reasoning_text=_cut(reasoning, max_chars),
        reasoning_inline=True,
        finish_reason=finish_reason,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        reasoning_tokens=None,
    )


def _continued(final: _Answer) -> _Answer:
    """The answer phase continues after </think>, so what it writes is answer: a server's reasoning parser
    that files all of it as reasoning (no </think> in the output) is overruled."""
    if final.answer_text or final.reasoning_inline or not final.reasoning_text:
        return final
    return _Answer(final.reasoning_text, None, True, final.finish_reason, final.prompt_tokens, final.completion_tokens, 0)


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def _budget_forced(thinking: _Answer, final: _Answer) -> dict[str, Any]:
    """One result from both phases; phase 1 was all reasoning, so its tokens count as reasoning."""
    phase1_reasoning = thinking.completion_tokens if thinking.reasoning_tokens is None else thinking.reasoning_tokens
    phase2_reasoning = final.reasoning_tokens
    if phase2_reasoning is None and not final.reasoning_text:
        phase2_reasoning = 0
    return {
        "answer_text": final.answer_text,
        "reasoning_text": "\n\n".join(t for t in (thinking.reasoning_text, final.reasoning_text) if t) or None,
        "finish_reason": final.finish_reason,
        "prompt_tokens": _add(thinking.prompt_tokens, final.prompt_tokens),
        "completion_tokens": _add(thinking.completion_tokens, final.completion_tokens),
        "reasoning_tokens": _add(phase1_reasoning, phase2_reasoning),
        "answer_tokens": final.answer_tokens,
        "answer_phase": BUDGET_FORCED,
    }


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
            if cached is not None:
                results[i] = hit = CompletionResult(**{**cached, "from_cache": True})
                self.on_result(hit)
            else:
                pending.append(i)
        if not pending:
            return results  # type: ignore[return-value]
        self.limit = AdaptiveLimit(self.endpoint.concurrency)
        self.most_members = 1
        client = openai.AsyncOpenAI(
            base_url=self.endpoint.base_url, api_key=self._api_key, timeout=self.endpoint.timeout_s, max_retries=0
        )
        member = self.shares.join(self.endpoint.base_url) if self.shares else None
        if member:
            self._take_share(member)
        rebalancing = asyncio.create_task(self._rebalance(member)) if member else None
        try:
            await self._preflight(client)

            async def one(i: int) -> None:
                results[i] = result = await self._complete(client, requests[i])
                self.on_result(result)

            await asyncio.gather(*(one(i) for i in pending))
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
                f"cannot reach the endpoint {self.endpoint.base_url} ({type(exc).__name__}: {exc}); "
                "is the server running and the base_url right? Nothing was recorded."
            ) from None
        except Exception:
            pass  # it answers; whether /models works (some servers lack it) the requests themselves will tell

    async def _complete(self, client: openai.AsyncOpenAI, request: CompletionRequest) -> CompletionResult:
        """Phase 1, and the answer phase when the budget ran out inside the reasoning; cache a success."""
        started = time.perf_counter()
        attempts = 0
        try:
            thinking, attempts = await self._ask(client, CHAT_ROUTE, {**self._thinking_body, "messages": request.messages})
            if self.budget is not None and thinking.still_thinking:
                final, more = await self._ask(client, *self._answer_request(request, thinking), attempts)
                attempts += more
                fields = _budget_forced(thinking, _continued(final))
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
                latency_s=time.perf_counter() - started,
                attempts=failure.attempts,
                error=self._redacted(failure.reason),
            )
        result = CompletionResult(
            request_hash=request.request_hash, latency_s=time.perf_counter() - started, attempts=attempts, error=None, **fields
        )
        record = asdict(result)
        record.pop("from_cache")
        self.cache.put(request.request_hash, record)
        return result

    def _answer_request(self, request: CompletionRequest, thinking: _Answer) -> tuple[str, dict[str, Any]]:
        """Route and body of the answer phase: the same assistant turn, its thought closed, continued."""
        reasoning = thinking.reasoning_text or ""
        assert self.budget is not None  # an answer phase runs only under a thinking budget
        if self.budget.continuation == CHAT:
            return CHAT_ROUTE, {**self._answer_body, "messages": continued_messages(request.messages, reasoning)}
        return COMPLETIONS_ROUTE, {**self._answer_body, "prompt": self.budget.continued_prompt(request.messages, reasoning)}

    def _redacted(self, reason: str) -> str:
        """An error reason fit to store: a server may quote the credentials back."""
        return reason.replace(self._api_key, "<api key>") if self._api_key else reason

    async def _ask(
        self, client: openai.AsyncOpenAI, route: str, body: dict[str, Any], attempts_before: int = 0
    ) -> tuple[_Answer, int]:
        """One chat (or raw text) completion under the retry policy: (answer, attempts made), or _Failed with the
        last reason (and the attempts of both phases).

        It goes through the client's documented `post` for endpoints it does not type, with the JSON
        body and reply as plain data: the SDK's request transform and response models cost about a
        quarter of its CPU time per request, and a saturated client is CPU-bound. Authentication,
        status errors (RateLimitError, ...) and connection handling stay the SDK's."""
        endpoint = self.endpoint
        reason = "no attempt made"
        for attempt in range(1, endpoint.max_retries + 2):
            pause: float | None = None  # a Retry-After: the limit's pause covers it for every request
            window = await self.limit.acquire()
            try:
                async with asyncio.timeout(endpoint.timeout_s):
                    data = await client.post(route, body=body, cast_to=object)
                parse = _parse_response if route == CHAT_ROUTE else _parse_completion
                answer = parse(data, endpoint.max_text_chars)
            except openai.RateLimitError as exc:
                reason, pause = _status_reason(exc), _retry_after(exc, endpoint.backoff_max_s)
                self.limit.on_rate_limited(window, pause)
            except openai.APIStatusError as exc:
                reason, pause = _status_reason(exc), _retry_after(exc, endpoint.backoff_max_s)
                if exc.status_code < 500 and exc.status_code not in (408, 409):
                    raise _Failed(reason, attempts_before + attempt) from None  # a client error will not change on retry
                self.limit.on_trouble(pause)
            except (openai.APITimeoutError, TimeoutError):
                reason = f"timed out after {endpoint.timeout_s:g} s"
                self.limit.on_trouble(None)
            except openai.APIConnectionError as exc:
                reason = f"connection failed: {_innermost(exc)}"
                self.limit.on_trouble(None)
            except _Malformed as exc:
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
                await asyncio.sleep(backoff * (0.5 + random.random()))
        raise _Failed(reason, attempts_before + endpoint.max_retries + 1)
