"""Content-addressed response cache: one JSON file per successful response, written atomically as it
arrives, so a re-run makes zero requests and a killed run resumes where it stopped. Errors are never
cached: a later run retries them."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rs_dagster.tasks.base import canonical_json, sha256_hex


def request_hash(base_url: str, served_model: str, messages: list[dict], sampler_params: dict, sample_index: int) -> str:
    """The cache key: endpoint identity, served model, exact messages, sampler params and sample index
    (so repeated samples at temperature > 0 stay distinct)."""
    return sha256_hex(
        canonical_json(
            {
                "base_url": base_url.rstrip("/"),
                "model": served_model,
                "messages": messages,
                "sampler": sampler_params,
                "sample": sample_index,
            }
        )
    )[:32]


class ResponseCache:
    def __init__(self, directory: Path):
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            path.unlink(missing_ok=True)  # a torn file cannot exist (atomic rename) but never trust one
            return None

    def put(self, key: str, record: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(record))
        os.replace(tmp, path)

    def entries(self) -> Iterator[Path]:
        return (path for path in self.directory.glob("??/*.json"))

    def stats(self, referenced: set[str]) -> CacheStats:
        """Size and age of the cache; `referenced` are the request hashes the warehouse still uses."""
        count = size = in_use = 0
        oldest = newest = None
        for path in self.entries():
            info = path.stat()
            count, size = count + 1, size + info.st_size
            in_use += path.stem in referenced
            oldest = info.st_mtime if oldest is None else min(oldest, info.st_mtime)
            newest = info.st_mtime if newest is None else max(newest, info.st_mtime)
        return CacheStats(count, size, in_use, oldest, newest)

    def prune(self, keep: set[str] | None, older_than_s: float | None, dry_run: bool = False) -> tuple[int, int]:
        """Delete entries not in `keep` (when given) and older than `older_than_s` (when given);
        return (entries, bytes) removed. With neither condition nothing is removed."""
        if keep is None and older_than_s is None:
            return 0, 0
        cutoff = time.time() - older_than_s if older_than_s is not None else None
        removed = freed = 0
        for path in self.entries():
            info = path.stat()
            if (keep is None or path.stem not in keep) and (cutoff is None or info.st_mtime < cutoff):
                removed, freed = removed + 1, freed + info.st_size
                if not dry_run:
                    path.unlink(missing_ok=True)
        return removed, freed


@dataclass(frozen=True)
class CacheStats:
    entries: int
    bytes: int
    referenced: int  # entries whose request_hash a completions row still uses
    oldest_mtime: float | None
    newest_mtime: float | None
