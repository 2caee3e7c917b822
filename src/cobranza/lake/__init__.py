"""The lake: Parquet zones with versioned atomic publishing, and the DuckDB catalog over them."""

from cobranza.lake.catalog import refresh_catalog
from cobranza.lake.store import ZONES, Lake, LakeError, Publication, Transaction, new_run_id

__all__ = [
    "ZONES",
    "Lake",
    "LakeError",
    "Publication",
    "Transaction",
    "new_run_id",
    "refresh_catalog",
]
