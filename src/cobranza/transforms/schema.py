"""Names shared across layers for the gold table; one name per concept in code, tables, API and docs.

Every column of `gold.obligation_snapshots` that is not listed in NON_FEATURES is a model feature:
numeric columns are used as numbers, string columns as categories. The treatment (the arm of the
bank's decision at d and the collection actions that followed) and every label describe what
happened at or after d: they are never features.
"""

from cobranza.tables import GOLD_TABLE  # noqa: F401 - defined once, for every layer

OBLIGATION_ID = "obligation_id"
CUT_DATE = "cut_date"
CLIENT_KEY = "client_key"  # keyed-hash pseudonym of the bank's client_id; raw is the only zone with client_id
ELIGIBLE = "eligible"
TARGET = "self_cure_debit"
SPLIT_HINT = "split_hint"
EXPOSURE = "outstanding_balance"  # what is at stake: the outstanding balance at d (also a feature)
# The treatment: the decision taken at d (contract version 2) and what the collections team did.
ARM = "arm"  # ASSIGNED, HOLDOUT or RULE; unassigned past cuts ASSIGNED; null at the latest cut
ASSIGNED = "assigned"  # arm == ASSIGNED
DAYS_TO_FIRST_ACTION = "days_to_first_action"
ACTION_COST = "action_cost"
TREATMENT = (ARM, ASSIGNED, DAYS_TO_FIRST_ACTION, ACTION_COST)
# The labels, as they actually happened under the recorded arm.
CURE_ANY = "cure_any"
ROLL_31_PLUS = "roll_31_plus"
AMOUNT_RECOVERED = "amount_recovered"
LABELS = (TARGET, CURE_ANY, ROLL_31_PLUS, AMOUNT_RECOVERED)
KEYS = (OBLIGATION_ID, CUT_DATE)
NON_FEATURES = (OBLIGATION_ID, CUT_DATE, CLIENT_KEY, ELIGIBLE, *TREATMENT, *LABELS, SPLIT_HINT)
# Descriptive columns that are also features; results tables carry them for the collections team.
DESCRIPTIVE = ("product", "segment", "days_past_due", "amount_past_due")
