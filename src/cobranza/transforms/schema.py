"""Names shared across layers for the gold table; one name per concept in code, tables, API and docs.

Every column of `gold.obligation_snapshots` that is not listed in NON_FEATURES is a model feature:
numeric columns are used as numbers, string columns as categories.
"""

from cobranza.tables import GOLD_TABLE  # noqa: F401 - defined once, for every layer

OBLIGATION_ID = "obligation_id"
CUT_DATE = "cut_date"
CLIENT_KEY = "client_key"  # keyed-hash pseudonym of the bank's client_id; raw is the only zone with client_id
ELIGIBLE = "eligible"
TARGET = "self_cure_debit"
SPLIT_HINT = "split_hint"
KEYS = (OBLIGATION_ID, CUT_DATE)
NON_FEATURES = (OBLIGATION_ID, CUT_DATE, CLIENT_KEY, ELIGIBLE, TARGET, SPLIT_HINT)
# Descriptive columns that are also features; results tables carry them for the collections team.
DESCRIPTIVE = ("product", "segment", "days_past_due", "amount_past_due")
