"""Sampler settings (assets/samplers/NAME.yaml): how each request is sampled."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Sampler(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int = Field(1024, ge=1)
    seed: int | None = None
    stop: list[str] | None = None
    extra_body: dict[str, Any] = Field(default_factory=dict)  # server-specific: top_k, min_p, ...
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    # Thinking budget (execution.budget.ThinkingBudget, given to the Runner as its policy): the model
    # thinks for at most think_budget tokens (no stop sequences: they must not fire inside reasoning);
    # if it is still thinking then, its thought is closed (</think>) and it goes on, in the same
    # assistant turn, to its answer in at most answer_budget tokens (with the stop sequences).
    # max_tokens is not sent when think_budget is set. budget_continuation says how the endpoint
    # continues the turn: "chat" (vLLM, SGLang: continue_final_message) or "completions" (any server
    # with /v1/completions; the prompt is rendered with the chat template of the model's `tokenizer:`).
    think_budget: int | None = Field(None, ge=1)
    answer_budget: int = Field(64, ge=1)
    budget_continuation: Literal["chat", "completions"] = "chat"

    def request_params(self) -> dict[str, Any]:
        """What identifies a request's sampling, hashed into its cache key: the parameters sent
        (sent_params) and, with a thinking budget, think_budget, answer_budget and budget_continuation:
        an answer continued another way (or by the old two-turn forced answer, whose keys lack it) came
        from other text or another server path and must not be reused. Without a budget the key is the
        one from before budgets existed, so existing caches stay valid."""
        params = self.sent_params()
        if self.think_budget is not None:
            params["think_budget"] = self.think_budget
            params["answer_budget"] = self.answer_budget
            params["budget_continuation"] = self.budget_continuation
        return params

    def sent_params(self) -> dict[str, Any]:
        """Parameters of every chat completion request; the Runner gets the budget as its own policy."""
        params: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        for key in ("top_p", "seed", "stop", "reasoning_effort"):
            if getattr(self, key) is not None:
                params[key] = getattr(self, key)
        if self.extra_body:
            params["extra_body"] = dict(self.extra_body)
        return params
