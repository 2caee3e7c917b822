"""The simulator's knobs (SimulationConfig) and its fixed calendar of month-end cuts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from cobranza.errors import CobranzaError

DEFAULT_END = date(2026, 10, 31)
# Fixed, machine-independent chunk size: the same arguments always give the same chunks (and bytes).
CHUNK_CLIENTS = 25_000
DRIFT_MONTHS = 4


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. `end` is the last month-end cut date (also the extract's as_of)."""

    clients: int = 20_000
    months: int = 24
    seed: int = 42
    drift: bool = False
    noise: float = 0.002
    end: date | None = None

    @property
    def end_date(self) -> date:
        return self.end or DEFAULT_END

    def validate(self) -> None:
        if self.clients < 1:
            raise CobranzaError(f"simulate: clients must be >= 1, got {self.clients}")
        if not 4 <= self.months <= 120:
            raise CobranzaError(f"simulate: months must be within 4..120, got {self.months}")
        if not 0.0 <= self.noise <= 0.5:
            raise CobranzaError(f"simulate: noise must be within 0..0.5, got {self.noise}")
        end = np.datetime64(self.end_date, "D")
        if (end + 1).astype("datetime64[M]") == end.astype("datetime64[M]"):
            raise CobranzaError(f"simulate: end must be a month-end date, got {self.end_date}")


@dataclass(frozen=True)
class Calendar:
    """Window months 0..M-1: month starts, month-end cut dates and month lengths."""

    month_start: np.ndarray  # datetime64[D], shape (M,)
    cut: np.ndarray  # datetime64[D], shape (M,)
    length: np.ndarray  # int64 days in month
    month_of_year: np.ndarray  # 1..12

    @classmethod
    def build(cls, cfg: SimulationConfig) -> Calendar:
        end_m = np.datetime64(cfg.end_date, "M")
        months = np.arange(end_m - cfg.months + 1, end_m + 1)
        start = months.astype("datetime64[D]")
        cut = (months + 1).astype("datetime64[D]") - 1
        length = (cut - start).astype(np.int64) + 1
        moy = (months.astype(np.int64) % 12) + 1
        return cls(start, cut, length, moy)

    @property
    def n(self) -> int:
        return len(self.cut)

    def month_start_of(self, rel: np.ndarray) -> np.ndarray:
        """First day of window-relative month indices (negative = before the window)."""
        base = self.month_start[0].astype("datetime64[M]")
        return (base + rel.astype("timedelta64[M]")).astype("datetime64[D]")
