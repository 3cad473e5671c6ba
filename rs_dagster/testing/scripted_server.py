"""A real OpenAI-compatible HTTP server on loopback whose replies are scripted by a Python function.

Tests and benchmarks use it to drive the real `openai` client over real HTTP with answers of known
accuracy, and to inject the faults real servers produce (status codes, Retry-After, malformed JSON,
empty choices, slow responses, connections reset mid-response). Anything but HTTP (an https client's
TLS handshake) is answered 400 and the connection closed, as a real plain-HTTP server does.

It is an asyncio server on its own thread: hundreds of concurrent keep-alive connections cost no
threads, and a Reply's delay_s is a sleep that blocks nothing else. The responder runs on that event
loop, so it must be quick; model latency belongs in Reply.delay_s.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any


@dataclass
class Reply:
    content: str | None = ""
    finish_reason: str = "stop"
    reasoning_content: str | None = None
    completion_tokens: int | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes | None = None  # sent verbatim instead of a completion (malformed JSON, empty choices)
    delay_s: float = 0.0
    reasoning_tokens: int | None = None  # reported as usage.completion_tokens_details.reasoning_tokens
    cut_after_bytes: int | None = None  # reset the connection after this many bytes of the response (status line included)
    system_fingerprint: str | None = None  # reported as the response's system_fingerprint
    model: str | None = None  # the model the response reports (default: the one requested)
    served: dict[str, Any] = field(default_factory=dict)  # more top-level fields, as a provider adds them


Responder = Callable[[dict[str, Any]], Reply]

_NOT_FOUND = b'{"error": {"message": "not found"}}'


class ScriptedServer:
    def __init__(self, responder: Responder, model_ids: tuple[str, ...] = ("scripted",), port: int = 0):
        self.responder = responder
        self.model_ids = model_ids
        self.requests: list[dict[str, Any]] = []  # chat completion bodies, in arrival order
        self.request_headers: list[dict[str, str]] = []  # their headers (lower-case names)
        self.in_flight = 0  # chat completions being answered now (a responder may read it)
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._sock = socket.create_server(("127.0.0.1", port), backlog=1024)  # port 0: any free one
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}/v1"

    @property
    def completion_requests(self) -> int:
        with self._lock:
            return len(self.requests)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        start = asyncio.start_server(self._serve_connection, sock=self._sock, limit=1 << 20)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result()
        return self

    def __exit__(self, *exc) -> None:
        async def stop() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """HTTP/1.1 with keep-alive, as much of it as the openai client uses."""
        try:
            while True:
                first = await reader.readexactly(1)
                if not first.isalpha():  # not a request line (a TLS ClientHello to this plain-HTTP server)
                    await _write(writer, 400, b'{"error": {"message": "invalid HTTP request"}}', {"Connection": "close"})
                    return  # as real servers do: 400 and hang up, so an https client fails its handshake at once
                head = first + await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                if method == "GET" and path.rstrip("/").endswith("/models"):
                    data = [{"id": m, "object": "model", "owned_by": "rs-dagster-tests"} for m in self.model_ids]
                    await _write(writer, 200, json.dumps({"object": "list", "data": data}).encode())
                elif method == "POST" and path.rstrip("/").endswith("/chat/completions"):
                    if not await self._complete(writer, json.loads(body or b"{}"), headers):
                        return
                else:
                    await _write(writer, 404, _NOT_FOUND)
                if headers.get("connection", "").lower() == "close":
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away (timed out, or done)
        except asyncio.CancelledError:
            pass  # the server is stopping; ending quietly keeps asyncio from logging every open connection
        finally:
            writer.close()

    async def _complete(self, writer: asyncio.StreamWriter, body: dict[str, Any], headers: dict[str, str]) -> bool:
        """Answer one chat completion; False when the connection was cut on purpose."""
        with self._lock:
            self.requests.append(body)
            self.request_headers.append(headers)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            try:
                reply = self.responder(body)
            except Exception as exc:  # a broken script answers 500 and names itself instead of hanging the client
                reply = Reply(status=500, raw_body=json.dumps({"error": {"message": f"responder raised {exc!r}"}}).encode())
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            status, payload = _payload(reply, body)
            if reply.cut_after_bytes is None:
                await _write(writer, status, payload, reply.headers)
                return True
            response = _response_bytes(status, payload, reply.headers)
            writer.write(response[: reply.cut_after_bytes])
            await writer.drain()
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # linger 0: the client sees a reset, not a clean close
            return False
        finally:
            with self._lock:
                self.in_flight -= 1


def _payload(reply: Reply, body: dict[str, Any]) -> tuple[int, bytes]:
    if reply.raw_body is not None:
        return reply.status, reply.raw_body
    if reply.status != 200:
        return reply.status, json.dumps({"error": {"message": f"scripted status {reply.status}", "type": "scripted"}}).encode()
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.reasoning_content is not None:
        message["reasoning_content"] = reply.reasoning_content
    tokens = reply.completion_tokens if reply.completion_tokens is not None else len((reply.content or "").split())
    usage: dict[str, Any] = {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens}
    if reply.reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reply.reasoning_tokens}
    completion = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or body.get("model", "scripted"),
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
        "usage": usage,
        **({"system_fingerprint": reply.system_fingerprint} if reply.system_fingerprint is not None else {}),
        **reply.served,
    }
    return 200, json.dumps(completion).encode()


def _response_bytes(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Scripted"
    lines = [f"HTTP/1.1 {status} {phrase}", "Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _write(writer: asyncio.StreamWriter, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    writer.write(_response_bytes(status, body, headers))
    await writer.drain()
