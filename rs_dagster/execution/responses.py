"""Turning what an endpoint sent back into a completion row: the answer and its reasoning split apart,
the finish reason, token counts (both phases of a budget-forced answer added up), over-long texts cut,
and an API error turned into a reason fit to store (with any Retry-After it asked for): a failure to
get any reply is named by its kind (connection_reason)."""

from __future__ import annotations

import email.utils
import errno
import json
import re
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import openai

from rs_dagster.execution.reasoning import split_reasoning
from rs_dagster.scoring.outcomes import AnswerPhase


@dataclass
class CompletionResult:
    request_hash: str
    answer_text: str | None
    reasoning_text: str | None
    finish_reason: str | None
    prompt_tokens: int | None  # token counts add up both phases of a budget-forced answer
    completion_tokens: int | None
    reasoning_tokens: int | None
    latency_s: float  # time in flight, summed over attempts and phases: from each send (slot acquired) to its reply
    attempts: int  # HTTP requests made, over both phases
    error: str | None
    from_cache: bool = False
    answer_tokens: int | None = None  # completion tokens that were answer, not reasoning, when known
    answer_phase: str | None = None  # an AnswerPhase; None for errors and older cache entries
    # Time not in flight: waiting for a concurrency slot (and any Retry-After pause) before each attempt, and
    # the backoff between attempts; latency_s + queue_wait_s is the request's wall time. None for a cache hit.
    queue_wait_s: float | None = None
    # what the response said about the server (ServerWords); None when it said nothing, or cached before
    response_model: str | None = None
    system_fingerprint: str | None = None
    served_metadata_json: str | None = None


STANDARD_FIELDS = {"id", "object", "created", "model", "choices", "usage", "system_fingerprint"}
MAX_SERVED_METADATA_CHARS = 2000


@dataclass(frozen=True)
class ServerWords:
    """What a response says about who answered: the `model` it reports (a hosted name may resolve to a dated
    snapshot), its `system_fingerprint` (the serving configuration), and any other top-level field a provider
    adds (OpenRouter's `provider`, a `service_tier`), as JSON. A provider can change any of them behind the same
    model name; the nightly drift check (rs_dagster.stats.drift) compares them night to night."""

    response_model: str | None = None
    system_fingerprint: str | None = None
    served_metadata_json: str | None = None

    @staticmethod
    def of(data: Any) -> ServerWords:
        if not isinstance(data, dict):
            return ServerWords()
        extra = {k: v for k, v in data.items() if k not in STANDARD_FIELDS and v is not None}
        served = json.dumps(extra, sort_keys=True, default=str) if extra else None
        if served is not None and len(served) > MAX_SERVED_METADATA_CHARS:
            served = served[:MAX_SERVED_METADATA_CHARS]
        return ServerWords(_text(data.get("model")), _text(data.get("system_fingerprint")), served)


@dataclass
class Answer:
    """One parsed chat completion."""

    answer_text: str | None
    reasoning_text: str | None
    reasoning_inline: bool  # the reasoning came as <think> in the content, not in a separate field
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    reasoning_tokens: int | None
    server: ServerWords = ServerWords()

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
            "answer_phase": AnswerPhase.SINGLE.value,
            **vars(self.server),
        }


class MalformedResponse(Exception):
    """A 200 response that holds no usable answer."""


def retry_after(exc: openai.APIStatusError, cap: float) -> float | None:
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


def status_reason(exc: openai.APIStatusError) -> str:
    """`HTTP 503: <the server's error message>`, from a JSON error body or the start of a text one."""
    body = exc.body
    detail = body.get("message") if isinstance(body, dict) else body
    detail = " ".join(str(detail).split())[:300] if detail else ""
    return f"HTTP {exc.status_code}: {detail}" if detail else f"HTTP {exc.status_code}"


def innermost_error(exc: BaseException) -> str:
    """The deepest error in the chain that has a message: the socket's own words."""
    chain = _chain(exc)
    described = next((e for e in reversed(chain) if str(e)), chain[0])
    return f"{type(described).__name__}: {described}"


def connection_reason(exc: BaseException, base_url: str, timeout_s: float) -> str:
    """Why a request to `base_url` got no HTTP reply, by kind, as stored and shown:

    - `connection refused (HOST:PORT)`: nothing listens there;
    - `DNS lookup failed for HOST: <resolver's words>`;
    - `TLS handshake failed: <reason>` (an https URL to a plain-HTTP server, an untrusted certificate);
    - `timed out after N s`: the attempt's time limit;
    - `connection failed: <the socket's error>`: anything else (a connection reset or cut mid-reply).

    The client reports most of these as APITimeoutError ("Request timed out."): its aiohttp transport
    wraps every failure to connect as httpx's ConnectTimeout. The socket's own error, at the bottom of the
    exception chain (__cause__ / __context__), says which it was."""
    chain = _chain(exc)
    host, port = _address(chain, base_url)
    for link in reversed(chain):  # innermost first
        if isinstance(link, ssl.SSLError):
            return f"TLS handshake failed: {_ssl_words(link)}"
        if isinstance(link, socket.gaierror):
            return f"DNS lookup failed for {host}: {link.strerror or link}"
        if isinstance(link, ConnectionRefusedError) or (isinstance(link, OSError) and link.errno == errno.ECONNREFUSED):
            return f"connection refused ({host}:{port})"
    if any(isinstance(link, TimeoutError) for link in chain) or isinstance(chain[-1], openai.APITimeoutError):
        return f"timed out after {timeout_s:g} s"
    return f"connection failed: {innermost_error(exc)}"


def _address(chain: list[BaseException], base_url: str) -> tuple[str, int | str]:
    """The host and port the client tried: the transport's (a proxy's, when one is used), else the URL's."""
    for link in chain:
        host, port = getattr(link, "host", None), getattr(link, "port", None)
        if isinstance(host, str) and host and isinstance(port, int):
            return host, port
    url = urllib.parse.urlsplit(base_url)
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        port = "?"
    return url.hostname or base_url, port


def _ssl_words(exc: ssl.SSLError) -> str:
    """`[SSL: WRONG_VERSION_NUMBER] wrong version number`, without the C source line."""
    words = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], str) else str(exc)
    return re.sub(r"\s*\(_ssl\.c:\d+\)$", "", words) or type(exc).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and len(chain) < 10:
        chain.append(link)
        link = link.__cause__ or link.__context__
    return chain


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


def _first_choice(data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first choice and the usage of a completion's JSON."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices, list):
        raise MalformedResponse("response has no choices")
    choice = choices[0] if isinstance(choices[0], dict) else {}
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return choice, usage


def _answer(
    split: tuple[str | None, str | None], inline: bool, finish_reason: str | None, usage: dict[str, Any],
    reasoning_tokens: int | None, max_chars: int, data: Any,
) -> Answer:
    answer, reasoning = split
    return Answer(
        answer_text=_cut(answer, max_chars),
        reasoning_text=_cut(reasoning, max_chars),
        reasoning_inline=inline,
        finish_reason=finish_reason,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        reasoning_tokens=reasoning_tokens,
        server=ServerWords.of(data),
    )


def parse_chat(data: Any, max_chars: int) -> Answer:
    """What we keep from a chat completion's JSON; anything without a usable answer is MalformedResponse."""
    choice, usage = _first_choice(data)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise MalformedResponse("response choice has no message")
    content = _text(message.get("content"))
    reasoning_field = _text(message.get("reasoning_content")) or _text(message.get("reasoning"))
    finish_reason = _text(choice.get("finish_reason"))
    if content is None and not reasoning_field and finish_reason != "length":
        raise MalformedResponse("response message content is null")
    details = usage.get("completion_tokens_details")
    details = details if isinstance(details, dict) else {}
    return _answer(
        split_reasoning(content, reasoning_field), reasoning_field is None, finish_reason, usage,
        _count(details.get("reasoning_tokens")), max_chars, data,
    )


def parse_completion(data: Any, max_chars: int) -> Answer:
    """What we keep from a raw (text) completion's JSON: the continued text, usage."""
    choice, usage = _first_choice(data)
    text = _text(choice.get("text"))
    finish_reason = _text(choice.get("finish_reason"))
    if text is None and finish_reason != "length":
        raise MalformedResponse("response choice has no text")
    return _answer(split_reasoning(text, None), True, finish_reason, usage, None, max_chars, data)


def continued(final: Answer) -> Answer:
    """The answer phase continues after </think>, so what it writes is answer: a server's reasoning parser
    that files all of it as reasoning (no </think> in the output) is overruled."""
    if final.answer_text or final.reasoning_inline or not final.reasoning_text:
        return final
    return Answer(final.reasoning_text, None, True, final.finish_reason, final.prompt_tokens, final.completion_tokens, 0, final.server)


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def budget_forced(thinking: Answer, final: Answer) -> dict[str, Any]:
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
        "answer_phase": AnswerPhase.BUDGET_FORCED.value,
        **vars(final.server),  # the server of the answer phase: the one that wrote the answer
    }

