"""The ingestion's fatal error: the run stops, publishes nothing, and says why in one line."""

from __future__ import annotations

from cobranza.errors import CobranzaError


class IngestError(CobranzaError):
    """A fatal problem with an extract: the run stops and publishes nothing."""
