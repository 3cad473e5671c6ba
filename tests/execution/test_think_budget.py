"""Two-phase thinking budgets: a reasoning model cut off while still thinking is asked for its final
answer alone, its reasoning kept; stop sequences never apply inside the reasoning."""

import pytest

from rs_dagster.execution.cache import ResponseCache
from rs_dagster.execution.client import BUDGET_FORCED, FINAL_ANSWER_PROMPT, SINGLE, CompletionRequest, Endpoint, Runner
from rs_dagster.execution.sampler import Sampler
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

QUESTION = [{"role": "user", "content": "What is 3 + 4? End with ANSWER: <value>."}]
SAMPLER = Sampler(think_budget=32, stop=["\n\nQuestion:"])


def run_one(server, tmp_path, sampler=SAMPLER):
    endpoint = Endpoint(server.base_url, "scripted", backoff_base_s=0.01)
    runner = Runner(endpoint, "test-key", sampler.request_params(), ResponseCache(tmp_path))
    [result] = runner.run([CompletionRequest("hash-q", QUESTION)])
    return result


def thinker(phase1: Reply):
    """Phase 1 (the think budget as max_tokens) gets `phase1`; phase 2 (the final-answer turn) an answer."""

    def respond(body):
        if body["messages"][-1]["content"] == FINAL_ANSWER_PROMPT:
            return Reply(content="ANSWER: 7", completion_tokens=3)
        return phase1

    return respond


def test_reasoning_cut_by_the_budget_is_closed_and_the_answer_asked_for(tmp_path):
    reasoning = "3 plus 4: count up from 3, that is 4, 5, 6,"
    phase1 = Reply(content=None, reasoning_content=reasoning, finish_reason="length", completion_tokens=32, reasoning_tokens=32)
    with ScriptedServer(thinker(phase1)) as server:
        result = run_one(server, tmp_path)
        thinking, answering = server.requests
    assert thinking["max_tokens"] == 32 and "stop" not in thinking and thinking["messages"] == QUESTION
    assert answering["max_tokens"] == 64 and answering["stop"] == ["\n\nQuestion:"]
    assert answering["messages"] == [
        *QUESTION,
        {"role": "assistant", "content": reasoning},
        {"role": "user", "content": FINAL_ANSWER_PROMPT},
    ]
    assert result.answer_phase == BUDGET_FORCED and result.answer_text == "ANSWER: 7" and result.finish_reason == "stop"
    assert result.reasoning_text == reasoning
    assert (result.reasoning_tokens, result.answer_tokens, result.completion_tokens, result.attempts) == (32, 3, 35, 2)
    assert ResponseCache(tmp_path).get("hash-q")["answer_phase"] == BUDGET_FORCED


def test_an_unclosed_think_is_closed_with_its_tag(tmp_path):
    phase1 = Reply(content="<think>3 plus 4: count up from 3", finish_reason="length", completion_tokens=32)
    with ScriptedServer(thinker(phase1)) as server:
        result = run_one(server, tmp_path)
        assistant = server.requests[1]["messages"][-2]
    assert assistant == {"role": "assistant", "content": "<think>\n3 plus 4: count up from 3\n</think>"}
    assert result.answer_phase == BUDGET_FORCED and result.answer_text == "ANSWER: 7"
    assert result.reasoning_tokens == 32  # phase 1 held no answer, so all its tokens were reasoning


@pytest.mark.parametrize(
    "phase1, finish_reason",
    [
        (Reply(content="ANSWER: 7", reasoning_content="3 + 4 = 7", completion_tokens=12, reasoning_tokens=9), "stop"),
        (
            Reply(content="The sum is seven, so ANS", reasoning_content="3 + 4 = 7", finish_reason="length", completion_tokens=32, reasoning_tokens=26),
            "length",
        ),
    ],
    ids=["answered-within-budget", "answer-truncated-after-reasoning"],
)
def test_a_model_that_left_its_reasoning_is_not_asked_again(tmp_path, phase1, finish_reason):
    with ScriptedServer(thinker(phase1)) as server:
        result = run_one(server, tmp_path)
        assert server.completion_requests == 1
    assert result.answer_phase == SINGLE and result.finish_reason == finish_reason
    assert result.answer_tokens == phase1.completion_tokens - phase1.reasoning_tokens


def test_without_a_budget_the_sampler_goes_as_configured(tmp_path):
    with ScriptedServer(thinker(Reply(content="ANSWER: 7"))) as server:
        result = run_one(server, tmp_path, Sampler(stop=["\n\nQuestion:"], max_tokens=100, extra_body={"top_k": 20}))
        [body] = server.requests
    assert body["max_tokens"] == 100 and body["stop"] == ["\n\nQuestion:"]
    assert body["top_k"] == 20 and "extra_body" not in body  # merged into the body, as the SDK does
    assert result.answer_phase == SINGLE and result.answer_tokens == 2 and result.reasoning_tokens is None


def test_the_budget_is_part_of_the_cache_key_and_absent_otherwise():
    assert Sampler().request_params() == {"temperature": 0.0, "max_tokens": 1024}  # cache keys of existing samplers unchanged
    budgeted = {"temperature": 0.0, "max_tokens": 1024, "think_budget": 32, "answer_budget": 64}
    assert Sampler(think_budget=32).request_params() == budgeted
