"""Limits that keep one caller from starving the others or filling the disk.

- `RateLimiter`: a token bucket per key (after authentication) and one per client address (before
  it, so a caller without a key is limited too). A bucket holds up to `burst` tokens and refills at
  `rate` per second; a request takes one token or is answered 429 with `Retry-After`, the seconds
  until a token is back. A rate of 0 turns a bucket off. Buckets idle long enough to be full again
  are forgotten, so memory stays bounded by the callers of the last few seconds.
- `RefusalLog`: refused unauthenticated calls (401) are counted in `/metrics` and sampled into the
  audit: the first refusal of an address in a window is written, the rest of that window only
  counted, and the count written with the address's next sampled row; at most `max_rows` rows per
  window in all. Rows are written by a background thread, never on the event loop; a full queue
  drops rows (still counted).
- `prune_audit`: audit rows older than the retention period are deleted (at start and daily).
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter

from cobranza.api.control import ControlDB, now_iso

log = logging.getLogger("cobranza.api.limits")


class RateLimiter:
    """Token buckets by name (a key id, an address); thread-safe."""

    def __init__(self, rate: float, burst: float, clock=time.monotonic):
        self.rate = float(rate)
        self.burst = max(float(burst), 1.0)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)
        self._lock = threading.Lock()
        self._last_sweep = clock()

    def take(self, name: str) -> float:
        """0.0 when a token was taken; else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(name, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[name] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            if now - self._last_sweep > self.burst / self.rate:
                self._sweep(now)
        return wait

    def _sweep(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {n: b for n, b in self._buckets.items() if now - b[1] < full_after}
        self._last_sweep = now


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


class RefusalLog:
    """Counts every refused unauthenticated call; writes a sample of them to the audit."""

    def __init__(
        self,
        db: ControlDB,
        registry: Any,
        window_seconds: float = 60.0,
        max_rows: int = 100,
        clock=time.monotonic,
    ):
        self.db = db
        self.window_seconds = window_seconds
        self.max_rows = max_rows
        self.clock = clock
        self.counter = Counter(
            "cobranza_api_refused_unauthenticated",
            "Calls refused for want of a valid key (401), by reason.",
            ["reason"],
            registry=registry,
        )
        self._lock = threading.Lock()
        self._window_start = clock()
        self._rows_in_window = 0
        self._sampled: set[str] = set()  # addresses with a row in this window
        self._unwritten: dict[str, int] = {}  # address -> refusals not in any row yet
        self._queue: queue.Queue[tuple] = queue.Queue(maxsize=1000)
        self._thread = threading.Thread(target=self._writer, name="audit-refusals", daemon=True)
        self._thread.start()

    def refused(self, address: str, reason: str, method: str, path: str, rid: str) -> None:
        """Count one refusal; queue an audit row when this one is sampled."""
        self.counter.labels(reason).inc()
        with self._lock:
            now = self.clock()
            if now - self._window_start >= self.window_seconds:
                self._window_start, self._rows_in_window = now, 0
                self._sampled.clear()
            if address in self._sampled or self._rows_in_window >= self.max_rows:
                self._unwritten[address] = self._unwritten.get(address, 0) + 1
                return
            self._sampled.add(address)
            self._rows_in_window += 1
            earlier = self._unwritten.pop(address, 0)
        detail = {"sampled": True, "client": address, "reason": reason, "not_written": earlier}
        row = (now_iso(), method, path[:500], rid, json.dumps(detail))
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            log.warning("audit queue full: a sampled refusal was not written")

    def _writer(self) -> None:
        while True:
            row = self._queue.get()
            try:
                self.db.execute(
                    "INSERT INTO audit (at, method, path, action, status, outcome, request_id, "
                    "detail) VALUES (?, ?, ?, 'refused without a valid key', 401, 'denied', ?, ?)",
                    row,
                )
            except Exception:
                log.exception("audit write failed")
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until the queued rows are written (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)


def prune_audit(db: ControlDB, retention_days: int) -> int:
    """Delete audit rows older than `retention_days` (0 keeps everything); returns how many."""
    if retention_days <= 0:
        return 0
    cutoff = (datetime.now(UTC) - timedelta(days=retention_days)).isoformat(timespec="milliseconds")
    return db.execute("DELETE FROM audit WHERE at < ?", (cutoff,)).rowcount


class AuditRetention:
    """Prunes the audit at start and then once a day, in a daemon thread."""

    def __init__(self, db: ControlDB, retention_days: int, every_seconds: float = 86400.0):
        self.db = db
        self.retention_days = retention_days
        self.every_seconds = every_seconds
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._loop, name="audit-retention", daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                removed = prune_audit(self.db, self.retention_days)
                if removed:
                    log.info("audit rows past retention removed", extra={"rows": removed})
            except Exception:
                log.exception("audit retention failed")
            if self._stop.wait(self.every_seconds):
                return

    def stop(self) -> None:
        self._stop.set()
