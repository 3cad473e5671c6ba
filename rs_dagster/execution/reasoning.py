"""Separate a model's reasoning from its answer: servers return it in `reasoning_content` (vLLM,
DeepSeek) or `reasoning` (OpenRouter, Ollama), or inline as <think>...</think> in the content."""

from __future__ import annotations

import re

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def split_reasoning(content: str | None, reasoning_field: str | None) -> tuple[str, str | None]:
    """Return (answer_text, reasoning_text). An unclosed <think> means the model never left its
    reasoning (typically truncated): all of it is reasoning and the answer is empty. A </think> with
    no <think> before it closes reasoning whose opening tag the chat template put in the prompt
    (DeepSeek-R1, Qwen3 served without a reasoning parser)."""
    content = content or ""
    parts = [reasoning_field] if reasoning_field else []
    head, closed, rest = content.partition("</think>")
    if closed and "<think>" not in head:
        parts.append(head.strip())
        content = rest
    parts += [m.group(1).strip() for m in _THINK.finditer(content)]
    answer = _THINK.sub("", content)
    if "<think>" in answer:
        answer, _, dangling = answer.partition("<think>")
        parts.append(dangling.strip())
    answer = answer.replace("</think>", "").strip()
    reasoning = "\n\n".join(p for p in parts if p) or None
    return answer, reasoning
