"""Thinking budgets: a reasoning model cut off while still thinking has its thought closed and goes on to
its answer in the same assistant turn (never a new user turn); stop sequences never apply inside the
reasoning; the budget is the Runner's policy; a request without one keeps its cache key, and a budgeted
one is keyed by its continuation method too."""

from pathlib import Path

import pytest
import yaml

from rs_dagster.execution.budget import (
    COMPLETIONS,
    ThinkingBudget,
    closed_thought,
    continued_messages,
    render_continuation,
    thinking_budget_of,
)
from rs_dagster.execution.cache import ResponseCache, request_hash
from rs_dagster.execution.runner import CompletionRequest, Endpoint, Runner
from rs_dagster.execution.sampler import Sampler
from rs_dagster.scoring.outcomes import AnswerPhase
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

ROOT = Path(__file__).resolve().parents[2]
TOKENIZERS = ROOT / ".rs" / "tokenizers"
QUESTION = [{"role": "user", "content": "What is 3 + 4? End with ANSWER: <value>."}]
SAMPLER = Sampler(think_budget=32, stop=["\n\nQuestion:"])
REASONING = "3 plus 4: count up from 3, that is 4, 5, 6,"


def run_one(server, tmp_path, sampler=SAMPLER):
    endpoint = Endpoint(server.base_url, "scripted", backoff_base_s=0.01)
    budget = thinking_budget_of(sampler, None, "test")
    runner = Runner(endpoint, "test-key", sampler.sent_params(), ResponseCache(tmp_path), budget=budget)
    [result] = runner.run([CompletionRequest("hash-q", QUESTION)])
    return result


def thinker(phase1: Reply, answer: Reply | None = None):
    """Phase 1 (the think budget as max_tokens) gets `phase1`; the continued assistant turn an answer."""

    def respond(body):
        if body.get("continue_final_message"):
            return answer or Reply(content="ANSWER: 7", completion_tokens=3)
        return phase1

    return respond


def test_reasoning_cut_by_the_budget_is_closed_and_the_same_turn_continued(tmp_path):
    phase1 = Reply(content=None, reasoning_content=REASONING, finish_reason="length", completion_tokens=32, reasoning_tokens=32)
    with ScriptedServer(thinker(phase1)) as server:
        result = run_one(server, tmp_path)
        thinking, answering = server.requests
    assert thinking == {"model": "scripted", "temperature": 0.0, "max_tokens": 32, "messages": QUESTION}
    assert answering == {
        "model": "scripted",
        "temperature": 0.0,
        "max_tokens": 64,
        "stop": ["\n\nQuestion:"],
        "continue_final_message": True,
        "add_generation_prompt": False,
        "messages": [*QUESTION, {"role": "assistant", "content": f"<think>\n{REASONING}\n</think>\n\n"}],
    }
    assert result.answer_phase == AnswerPhase.BUDGET_FORCED and result.answer_text == "ANSWER: 7" and result.finish_reason == "stop"
    assert result.reasoning_text == REASONING
    assert (result.reasoning_tokens, result.answer_tokens, result.completion_tokens, result.attempts) == (32, 3, 35, 2)
    assert ResponseCache(tmp_path).get("hash-q")["answer_phase"] == AnswerPhase.BUDGET_FORCED


def test_an_unclosed_think_is_closed_with_its_tag(tmp_path):
    phase1 = Reply(content="<think>3 plus 4: count up from 3", finish_reason="length", completion_tokens=32)
    with ScriptedServer(thinker(phase1)) as server:
        result = run_one(server, tmp_path)
        assistant = server.requests[1]["messages"][-1]
    assert assistant == {"role": "assistant", "content": "<think>\n3 plus 4: count up from 3\n</think>\n\n"}
    assert result.answer_phase == AnswerPhase.BUDGET_FORCED and result.answer_text == "ANSWER: 7"
    assert result.reasoning_tokens == 32  # phase 1 held no answer, so all its tokens were reasoning


def test_a_continuation_a_reasoning_parser_filed_as_reasoning_is_the_answer(tmp_path):
    """A server parser that sees no </think> in the output (DeepSeek-R1 style) calls it all reasoning;
    the thought was closed before the continuation, so it is the answer."""
    phase1 = Reply(content=None, reasoning_content=REASONING, finish_reason="length", completion_tokens=32, reasoning_tokens=32)
    answer = Reply(content=None, reasoning_content="ANSWER: 7", completion_tokens=3, reasoning_tokens=3)
    with ScriptedServer(thinker(phase1, answer)) as server:
        result = run_one(server, tmp_path)
    assert result.answer_phase == AnswerPhase.BUDGET_FORCED and result.answer_text == "ANSWER: 7" and result.reasoning_text == REASONING
    assert (result.reasoning_tokens, result.answer_tokens) == (32, 3)


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
    assert result.answer_phase == AnswerPhase.SINGLE and result.finish_reason == finish_reason
    assert result.answer_tokens == phase1.completion_tokens - phase1.reasoning_tokens


def test_without_a_budget_the_sampler_goes_as_configured(tmp_path):
    with ScriptedServer(thinker(Reply(content="ANSWER: 7"))) as server:
        result = run_one(server, tmp_path, Sampler(stop=["\n\nQuestion:"], max_tokens=100, extra_body={"top_k": 20}))
        [body] = server.requests
    assert body["max_tokens"] == 100 and body["stop"] == ["\n\nQuestion:"]
    assert body["top_k"] == 20 and "extra_body" not in body  # merged into the body, as the SDK does
    assert result.answer_phase == AnswerPhase.SINGLE and result.answer_tokens == 2 and result.reasoning_tokens is None


def test_the_budget_is_the_runners_policy_not_a_request_param(tmp_path):
    assert "think_budget" not in SAMPLER.sent_params() and "answer_budget" not in SAMPLER.sent_params()
    with pytest.raises(ValueError, match="budget=ThinkingBudget"):
        Runner(Endpoint("http://127.0.0.1:9/v1", "m"), "k", SAMPLER.request_params(), ResponseCache(tmp_path))
    with pytest.raises(ValueError, match="chat template"):
        ThinkingBudget(32, 64, COMPLETIONS)


def test_cache_keys_without_a_budget_are_those_from_before_the_budget_became_a_policy():
    """Pinned from the code before thinking budgets: a request without one keeps its cache key (and stored results)."""
    assert Sampler().request_params() == {"temperature": 0.0, "max_tokens": 1024}
    url = "http://127.0.0.1:8000/v1"
    assert request_hash(url, "qwen3", QUESTION, Sampler().request_params(), 0) == "74f2cbd73654ad40f981b9bd2b5a9562"
    reasoning = Sampler(**yaml.safe_load((ROOT / "assets" / "samplers" / "reasoning.yaml").read_text()))
    assert request_hash(url, "qwen3", QUESTION, reasoning.request_params(), 0) == "acd31dac3f1c1abf1f28d6410a86bb79"


def test_the_continuation_method_is_part_of_a_budgeted_cache_key():
    """How the turn is continued changes what the model is given, so it is part of the request's identity:
    answers cached by the old two-turn forced answer (the key pinned from that code) are not reused."""
    budgeted = {"temperature": 0.0, "max_tokens": 1024, "think_budget": 32, "answer_budget": 64}
    assert Sampler(think_budget=32).request_params() == {**budgeted, "budget_continuation": "chat"}
    assert Sampler(think_budget=32, budget_continuation="completions").request_params() == {**budgeted, "budget_continuation": "completions"}
    sampler = Sampler(**yaml.safe_load((ROOT / "assets" / "samplers" / "reasoning_budget.yaml").read_text()))
    key = request_hash("http://127.0.0.1:8000/v1", "qwen3", QUESTION, sampler.request_params(), 0)
    assert key != "e9f3b441eaa6e83102da5bd37ab90975"  # the two-turn method's key
    assert key == "d086918701b72811bae49d7be7b133f9"


def test_a_changed_continuation_method_is_not_answered_from_the_cache(tmp_path):
    cache = ResponseCache(tmp_path)
    chatml = {"source": "endpoint", "chat_template": "chatml"}
    with ScriptedServer(lambda body: Reply(content="ANSWER: 7")) as server:

        def from_cache(sampler: Sampler) -> bool:
            key = request_hash(server.base_url, "scripted", QUESTION, sampler.request_params(), 0)
            budget = thinking_budget_of(sampler, chatml, "test")
            runner = Runner(Endpoint(server.base_url, "scripted"), "k", sampler.sent_params(), cache, budget=budget)
            [result] = runner.run([CompletionRequest(key, QUESTION)])
            return result.from_cache

        chat, completions = Sampler(think_budget=32), Sampler(think_budget=32, budget_continuation="completions")
        assert [from_cache(chat), from_cache(chat)] == [False, True]
        assert [from_cache(completions), from_cache(completions)] == [False, True]
        assert server.completion_requests == 2


# --- the continued prompt under the models' real chat templates ---------------------------------------------

FEW_SHOT = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is 1 + 1? End with ANSWER: <value>."},
    {"role": "assistant", "content": "ANSWER: 2"},
    *QUESTION,
]


def real_tokenizer(name: str):
    from rs_dagster.fft.tokenizers import LocalTokenizer

    folder = TOKENIZERS / name
    if not (folder / "tokenizer.json").is_file():
        pytest.skip(f"{folder} is missing; run `bash scripts/fetch_tokenizers.sh`")
    return LocalTokenizer(folder, None, f"tokenizer {name}")


@pytest.mark.parametrize("name, turn_start", [("qwen3", "<|im_start|>"), ("llama3_2", "<|start_header_id|>")])
@pytest.mark.parametrize("messages", [QUESTION, FEW_SHOT], ids=["one-turn", "few-shot"])
def test_the_continued_prompt_keeps_the_thought_in_the_same_assistant_turn(name, turn_start, messages):
    tokenizer = real_tokenizer(name)
    template = tokenizer.template
    asked = template.render(messages)  # the prompt of phase 1: generation prompt for the assistant turn
    continued = render_continuation(template, continued_messages(messages, REASONING))
    # String for string: phase 1's prompt, then the thought, closed, and nothing after it.
    assert continued == asked + f"<think>\n{REASONING}\n</think>\n\n"
    assert continued.count(turn_start) == asked.count(turn_start)  # no new user turn, no fresh generation prompt
    # Token for token: the model sees phase 1's prompt ids, then the closed thought's ids, and ends on them.
    ids, asked_ids = tokenizer.encode_texts([continued, asked])
    assert ids[: len(asked_ids)] == asked_ids
    assert tokenizer.decode(ids[len(asked_ids) :]) == closed_thought(REASONING)
    if name == "qwen3":  # </think> is one special token there: the second last, before "\n\n"
        [end_think] = tokenizer.encode_texts(["</think>"])[0]
        assert ids[-2] == end_think and tokenizer.decode(ids[-1:]) == "\n\n"


def test_a_new_user_turn_would_erase_the_thought_under_qwen3():
    """Why the answer phase continues the turn: Qwen3's template drops the thought of earlier turns."""
    template = real_tokenizer("qwen3").template
    two_turns = [*QUESTION, {"role": "assistant", "content": closed_thought(REASONING)}, {"role": "user", "content": "Answer now."}]
    assert REASONING not in template.render(two_turns)
    assert REASONING in render_continuation(template, continued_messages(QUESTION, REASONING))


def test_the_completions_prompt_leaves_bos_to_the_server():
    template = real_tokenizer("llama3_2").template
    budget = ThinkingBudget(32, 64, COMPLETIONS, template)
    prompt = budget.continued_prompt(QUESTION, REASONING)
    assert template.render(QUESTION).startswith("<|begin_of_text|>") and not prompt.startswith("<|begin_of_text|>")
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n" + closed_thought(REASONING))


def test_completions_mode_takes_the_template_from_the_models_tokenizer_entry():
    tokenizer = {"source": "local", "path": str(TOKENIZERS / "qwen3")}
    real_tokenizer("qwen3")
    budget = thinking_budget_of(Sampler(think_budget=32, budget_continuation="completions"), tokenizer, "models.q")
    assert budget.continuation == COMPLETIONS
    assert budget.continued_prompt(QUESTION, REASONING).endswith("<|im_start|>assistant\n" + closed_thought(REASONING))
    inline = thinking_budget_of(Sampler(think_budget=8, budget_continuation="completions"), {"source": "endpoint", "chat_template": "chatml"}, "m")
    assert inline.continued_prompt(QUESTION, "x") == (
        "<|im_start|>user\n" + QUESTION[0]["content"] + "<|im_end|>\n<|im_start|>assistant\n<think>\nx\n</think>\n\n"
    )
    from rs_dagster.errors import InputError

    with pytest.raises(InputError, match="tokenizer"):
        thinking_budget_of(Sampler(think_budget=8, budget_continuation="completions"), None, "models.q")


@pytest.mark.bundled_model
def test_completions_mode_continues_the_turn_on_the_bundled_llama_cpp_server(tmp_path):
    """The answer phase over /v1/completions against SmolLM2 served by llama.cpp: the server is given
    exactly the prompt rendered with the GGUF's own template (its prompt token count says so) and writes
    an answer within the answer budget."""
    import asyncio
    import socket

    import openai

    pytest.importorskip("llama_cpp", reason="the bundled model server needs the [server] extra")
    from rs_dagster.bundled import ALIAS, start_server
    from rs_dagster.execution.responses import Answer
    from rs_dagster.fft.tokenizers import BUNDLED_SMOLLM2, GgufTokenizer, resolve_path

    gguf = resolve_path(BUNDLED_SMOLLM2, "tokenizer")
    budget = thinking_budget_of(
        Sampler(think_budget=8, answer_budget=16, budget_continuation="completions"), {"source": "gguf", "path": BUNDLED_SMOLLM2}, "models.smollm2"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    server = start_server(base_url, tmp_path / "server.log")
    try:
        runner = Runner(Endpoint(base_url, ALIAS), "not-needed", Sampler().sent_params(), ResponseCache(tmp_path), budget=budget)
        thinking = Answer("", REASONING, True, "length", None, 8, None)

        async def answer_phase():
            async with openai.AsyncOpenAI(base_url=base_url, api_key="not-needed", max_retries=0) as client:
                route, body = runner._answer_request(CompletionRequest("h", QUESTION), thinking)
                return route, body, await runner._ask(client, route, body)

        route, body, (answer, attempts) = asyncio.run(answer_phase())
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert route == "/completions" and body["max_tokens"] == 16 and body["prompt"].endswith(closed_thought(REASONING))
    assert answer.prompt_tokens == len(GgufTokenizer(gguf, None, "t").encode_texts([body["prompt"]])[0])
    assert attempts == 1 and answer.finish_reason in ("stop", "length") and 0 < answer.completion_tokens <= 16
    assert answer.answer_text and "<think>" not in answer.answer_text
