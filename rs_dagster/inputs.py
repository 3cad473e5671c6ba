"""Loading the small user-edited YAML inputs (samplers, templates, models) with errors that name the
file and key. Task manifolds have their own loader in rs_dagster.tasks.manifold."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from rs_dagster.errors import InputError, UnknownNameError

M = TypeVar("M", bound=BaseModel)


def read_input(path: Path) -> str:
    """A user-edited input file's text; any read error (encoding, permissions) is one message naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} at offset {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    return parse_yaml(read_input(path), path)


def parse_yaml(text: str, path: Path) -> Any:
    """`text` (the file `path`'s) parsed; a copy, as callers may change it. The parse is cached by text: one
    command reads the same sampler and template files once per model, and PyYAML is slow."""
    try:
        return copy.deepcopy(_parsed(text))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None


@functools.lru_cache(maxsize=512)
def _parsed(text: str) -> Any:
    return yaml.safe_load(text)


def validate(model: type[M], raw: Any, where: str) -> M:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping, got {type(raw).__name__}")
    try:
        return model(**raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(document)"
            got = "" if err["type"] == "missing" else f" (got {err.get('input')!r})"
            problems.append(f"key {key!r}: {err['msg']}{got}")
        raise InputError(f"{where}: " + "; ".join(problems)) from None


def load_named(directory: Path, name: str, model: type[M], kind: str) -> tuple[M, str]:
    """Load `directory/name.yaml` as `model`; return it with the file's text (for versioning)."""
    path = directory / f"{name}.yaml"
    if not path.is_file():
        known = [p.stem for p in directory.glob("*.yaml")] if directory.is_dir() else []
        raise UnknownNameError(kind, name, known)
    text = read_input(path)
    return validate(model, parse_yaml(text, path), str(path)), text
