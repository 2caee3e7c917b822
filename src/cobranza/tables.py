"""Names of the tables more than one layer refers to: one name per table, everywhere.

`gold.obligation_snapshots` is written by the transforms and read by training, scoring, impact,
monitoring and the BI views; `results.scores` (every scoring run, append-only) and
`results.latest` (the current run) are written by scoring and read by impact, monitoring, the API
and the BI views.
"""

GOLD_TABLE = "obligation_snapshots"
SCORES = "scores"
LATEST = "latest"
