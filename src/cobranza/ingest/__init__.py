"""Ingestion: a bank extract folder validated against the contract into the raw zone.

Typed raw tables (one per contract file, named by its stem) plus `raw.quarantine`; fatal problems
raise `IngestError` and publish nothing.
"""

from cobranza.ingest.errors import IngestError
from cobranza.ingest.run import ingest_extract

__all__ = ["IngestError", "ingest_extract"]
