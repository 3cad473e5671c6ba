"""Rows stored as they arrive: a background thread upserts them into DuckDB in batches, so a killed
run keeps what it received and a long partition shows its rows before it ends. The event loop that
produces the rows never waits on DuckDB."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandera.polars as pa
import polars as pl
from polars._typing import PolarsDataType

from rs_dagster.storage.warehouse import Warehouse

_CLOSE = object()


class BatchedUpserts:
    """`add(row)` from any thread; rows reach partition `keys` of `table` (upserted by `key`) every `batch_size` rows or
    `every_s` seconds, whichever comes first; `close()` stores the rest and re-raises a write error."""

    def __init__(
        self,
        warehouse: Warehouse,
        table: str,
        schema: type[pa.DataFrameModel],
        keys: Mapping[str, str],
        key: str | Sequence[str],
        dtypes: Mapping[str, PolarsDataType],
        batch_size: int = 256,
        every_s: float = 2.0,
        on_flush: Callable[[int], None] = lambda rows: None,
    ):
        self._store = lambda rows: warehouse.upsert_rows(table, schema, pl.DataFrame(rows, schema_overrides=dtypes), keys, key)
        self._batch_size, self._every_s, self._on_flush = batch_size, every_s, on_flush
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self.stored = 0
        self._thread = threading.Thread(target=self._drain, name=f"batched-upserts-{table}", daemon=True)
        self._thread.start()

    def add(self, row: dict[str, Any]) -> None:
        self._queue.put(row)

    def close(self) -> None:
        self._queue.put(_CLOSE)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _drain(self) -> None:
        pending: list[dict[str, Any]] = []
        closing = False
        deadline = time.monotonic() + self._every_s
        while not closing:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                if item is _CLOSE:
                    closing = True
                else:
                    pending.append(item)
                    if len(pending) < self._batch_size and time.monotonic() < deadline:
                        continue
            except queue.Empty:
                pass
            deadline = time.monotonic() + self._every_s
            if pending and self._error is None:
                try:
                    self._store(pending)
                    self.stored += len(pending)
                    self._on_flush(len(pending))
                except BaseException as exc:  # kept for close(); the run's own write decides its fate
                    self._error = exc
            pending = []
