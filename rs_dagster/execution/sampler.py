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
    # Two-phase budget forcing (execution.client.Runner): the model thinks for at most think_budget
    # tokens (phase 1, no stop sequences: they must not fire inside reasoning); if it is still thinking
    # then, its reasoning is closed and it is asked for the final answer alone in at most answer_budget
    # tokens (phase 2, with the stop sequences). max_tokens is not sent when think_budget is set.
    think_budget: int | None = Field(None, ge=1)
    answer_budget: int = Field(64, ge=1)

    def request_params(self) -> dict[str, Any]:
        """Parameters of every chat completion request (and hashed into its cache key). The budget
        keys are instructions to the Runner, which takes them out before anything is sent."""
        params: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        for key in ("top_p", "seed", "stop", "reasoning_effort"):
            if getattr(self, key) is not None:
                params[key] = getattr(self, key)
        if self.extra_body:
            params["extra_body"] = dict(self.extra_body)
        if self.think_budget is not None:
            params["think_budget"] = self.think_budget
            params["answer_budget"] = self.answer_budget
        return params
