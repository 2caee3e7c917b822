"""Micro-batching of the predictions that go through `score_frame`: concurrent calls share one call.

Small requests do not come here: `cobranza.decision.online` scores them in the event loop. What
comes here are large requests and calls the fast path cannot serve (first call after a model load).

`score_frame` costs mostly a fixed per-call overhead (pandas column handling), so scoring one row
per call caps throughput far below the rows it could score. One worker thread takes every request
waiting in the queue (up to `max_rows` rows), scores them together and hands each request its own
rows back. Under light load a batch is one request and nothing waits; under heavy load batches
grow and throughput follows. When the policy has a capacity (a per-cut limit coupling the rows of
one call), requests are scored one by one, so a request's decisions never depend on another's.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any

import numpy as np
import pandas as pd

from cobranza.decision.online import integer_column

log = logging.getLogger("cobranza.api.batcher")


class PredictBatcher:
    def __init__(self, max_rows: int = 2000):
        self.max_rows = max_rows
        self._queue: queue.Queue[tuple[Any, list[dict], Future]] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="predict-batcher", daemon=True)
        self._thread.start()

    def submit(self, loaded: Any, records: list[dict]) -> Future:
        """Score rows (obligation_id, cut_date, eligible, features) with the loaded champion.

        The future gets a DataFrame of the scored rows, in order. The frame is built here, once
        per batch: per-column pandas work is the fixed cost being amortized.
        """
        future: Future = Future()
        self._queue.put((loaded, records, future))
        return future

    def _work(self) -> None:
        while True:
            batch = [self._queue.get()]
            rows = len(batch[0][1])
            while rows < self.max_rows:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                rows += len(item[1])
            self._score(batch)

    def _score(self, batch: list[tuple[Any, list[dict], Future]]) -> None:
        # the batch scorer brings the registry and MLflow: loaded with the first model
        from cobranza.decision.scoring import score_frame

        groups: dict[int, list[tuple[Any, list[dict], Future]]] = {}
        for item in batch:  # a champion reload mid-batch: each model scores its own requests
            groups.setdefault(id(item[0]), []).append(item)
        for items in groups.values():
            loaded = items[0][0]
            chunks = [items] if loaded.policy.capacity is None else [[i] for i in items]
            for chunk in chunks:
                try:
                    frame = records_frame([r for _, recs, _ in chunk for r in recs], loaded)
                    scored = score_frame(
                        loaded.champion,
                        frame,
                        policy=loaded.policy,
                        templates=loaded.templates,
                        language=loaded.language,
                        design=loaded.design,
                        challenger=loaded.challenger,
                    )
                except Exception as exc:
                    for _, _, future in chunk:
                        future.set_exception(exc)
                    continue
                start = 0
                for _, f, future in chunk:
                    future.set_result(scored.iloc[start : start + len(f)])
                    start += len(f)


def _numeric_column(values: list[Any]) -> np.ndarray:
    """int64 when every value is an integer (as an int64 gold column), else float64 (None -> NaN).

    The dtype matters for the reason texts only: the batch rounds float columns to a few
    significant digits and shows integer columns as they are.
    """
    if integer_column(values):
        return np.array(values, dtype=np.int64)
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def records_frame(rows: list[dict[str, Any]], loaded: Any) -> pd.DataFrame:
    """The rows as one frame, numeric features as int64 or float64 (None -> NaN), built in one call.

    Column by column inserts cost more than scoring itself for a single obligation; the route has
    already rejected non-numeric values of numeric features, so `float` cannot fail here.
    """
    numeric = set(loaded.features) - set(loaded.categorical)
    names = list(dict.fromkeys(name for row in rows for name in row))
    columns: dict[str, Any] = {}
    for name in names:
        values = [row.get(name) for row in rows]
        if name in numeric:
            columns[name] = _numeric_column(values)
        else:
            columns[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(columns)
