"""Thinking budgets as a policy for the Runner (ReasonScape style): the model thinks for at most
`think_tokens`; one still thinking then has its thought closed (`</think>`) and goes on, in the same
assistant turn, to its answer within `answer_tokens`.

The answer phase continues the assistant turn rather than asking in a new user turn: chat templates such
as Qwen3's erase an earlier turn's thought from history, so a new turn would make the model think afresh
inside the small answer budget. How the turn is continued is the endpoint's choice (`budget_continuation`
in the sampler):

- chat: one chat completion whose messages end with the assistant message "<think>\\n{thought}\\n</think>\\n\\n",
  sent with `continue_final_message: true, add_generation_prompt: false` (vLLM, SGLang; the server renders
  it with the model's own template and continues the text of that last message).
- completions: POST /completions over the prompt rendered here with the model's chat template (the
  `tokenizer:` entry of models.yaml, as for the token-FFT) and continued the same way, so any server that
  serves raw completions continues it (llama.cpp, llama-cpp-python, vLLM, TGI, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rs_dagster.errors import InputError
from rs_dagster.fft.tokenizers import ChatTemplate, TokenizerSpec, _local_or_gguf, resolve_path
from rs_dagster.inputs import validate

Continuation = Literal["chat", "completions"]
CHAT: Continuation = "chat"
COMPLETIONS: Continuation = "completions"


def closed_thought(reasoning: str) -> str:
    """The assistant's text so far: its thought, closed, and the blank line before an answer."""
    return f"<think>\n{reasoning.strip()}\n</think>\n\n"


def continued_messages(messages: list[dict[str, Any]], reasoning: str) -> list[dict[str, Any]]:
    """The conversation with the assistant turn holding the closed thought, to be continued (not answered)."""
    return [*messages, {"role": "assistant", "content": closed_thought(reasoning)}]


def render_continuation(template: ChatTemplate, messages: list[dict[str, Any]]) -> str:
    """The prompt text continuing the final (assistant) message, as transformers' (and so vLLM's)
    `continue_final_message` renders it: the chat rendered without a generation prompt, cut right after
    the final message's content, so no end-of-turn token, new turn or generation prompt follows it.
    Where the template trims the message (Llama 3's `| trim`), its trailing whitespace is put back:
    the model goes on from exactly the text it was given."""
    final = messages[-1]["content"]
    rendered = template.render(messages, add_generation_prompt=False)
    at = rendered.rfind(final.strip())
    if at < 0:
        raise InputError(
            "the chat template does not write the final assistant message into the prompt; "
            "use budget_continuation: chat, or a template that renders assistant messages"
        )
    return rendered[: at + len(final.strip())] + final[len(final.rstrip()) :]


@dataclass(frozen=True)
class ThinkingBudget:
    """How the Runner budgets reasoning; `template` (the model's chat template) is needed by `completions`."""

    think_tokens: int
    answer_tokens: int
    continuation: Continuation = CHAT
    template: ChatTemplate | None = None

    def __post_init__(self) -> None:
        if self.continuation not in (CHAT, COMPLETIONS):
            raise ValueError(f"budget continuation must be {CHAT!r} or {COMPLETIONS!r}, got {self.continuation!r}")
        if self.continuation == COMPLETIONS and self.template is None:
            raise ValueError("budget_continuation 'completions' needs the model's chat template")

    def continued_prompt(self, messages: list[dict[str, Any]], reasoning: str) -> str:
        """completions: the prompt text to continue. A BOS the template writes is left to the server,
        which adds its own to a completions prompt (vLLM, llama.cpp); twice would shift every token."""
        if self.template is None:  # __post_init__ refuses completions without a template
            raise ValueError("budget_continuation 'completions' needs the model's chat template")
        text = render_continuation(self.template, continued_messages(messages, reasoning))
        bos = self.template.bos_token
        return text[len(bos) :] if bos and text.startswith(bos) else text


def chat_template_of(tokenizer: dict[str, Any] | None, where: str) -> ChatTemplate:
    """The model's chat template from its `tokenizer:` entry (a tokenizer folder, a GGUF, or an inline
    template), loaded the way the token-FFT loads it."""
    if tokenizer is None:
        raise InputError(
            f"{where}: budget_continuation 'completions' renders the prompt with the model's chat template; "
            "give the model a `tokenizer:` entry (path: a tokenizer folder or .gguf, or chat_template)"
        )
    spec = validate(TokenizerSpec, tokenizer, f"{where}.tokenizer")
    if spec.path and spec.source != "tiktoken":
        return _local_or_gguf(resolve_path(spec.path, f"{where}.tokenizer"), spec.chat_template, f"{where}.tokenizer").template
    if spec.chat_template:
        return ChatTemplate(spec.chat_template, {}, f"{where}.tokenizer.chat_template")
    raise InputError(
        f"{where}.tokenizer: budget_continuation 'completions' needs the chat template: set tokenizer.path "
        "(a tokenizer folder or .gguf) or tokenizer.chat_template"
    )


def thinking_budget_of(sampler: Any, tokenizer: dict[str, Any] | None, where: str) -> ThinkingBudget | None:
    """The Runner's budget policy for a model: its sampler's budget, with its chat template where needed."""
    if sampler.think_budget is None:
        return None
    template = chat_template_of(tokenizer, where) if sampler.budget_continuation == COMPLETIONS else None
    return ThinkingBudget(sampler.think_budget, sampler.answer_budget, sampler.budget_continuation, template)
