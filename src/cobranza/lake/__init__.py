"""The lake: Parquet zones with versioned atomic publishing, and the DuckDB catalog over them.

Modules, lowest first: `layout` (names and paths), `fs` (flocks, durable atomic JSON), `locks`
(writer, working-folder and in-use locks), `journal` (the redo journal of a transaction and its
recovery), `store` (`Lake`: pointers, versions, publishing), `bi` and `catalog` (the DuckDB views),
`repair` (`lake use`) and `retention` (listing and pruning versions). Importing the package installs
the catalog refresh as the lake's after-commit callback: every publication refreshes the views.
"""

from cobranza.lake.catalog import after_commit, refresh_catalog
from cobranza.lake.layout import ZONES, LakeError, new_run_id
from cobranza.lake.store import Lake, Publication, Transaction, set_after_commit

set_after_commit(after_commit)

__all__ = [
    "ZONES",
    "Lake",
    "LakeError",
    "Publication",
    "Transaction",
    "new_run_id",
    "refresh_catalog",
]
