"""Reason wording in English: the reference language of the registry and docs/features.md."""

from __future__ import annotations

THOUSANDS_SEPARATOR = ","
DECIMAL_SEPARATOR = "."
NO_ACTIVE_MANDATE = (
    "no active debit mandate at the cut date: the recurring debit cannot pay it, assigned by rule"
)
# A row of the randomized holdout (decision.experiment): decided NO_ASSIGN to measure management.
CONTROL_GROUP = (
    "control group of the randomized holdout: do not contact; left unmanaged to measure what "
    "collection management achieves"
)
# The decision's own reason, first for every eligible obligation: which probabilities and which
# costs decided it (decision.policy). {p_no}/{p_act}: roll risk without/with management, {loss}:
# what a roll costs, {value}: the rolls management prevents, valued, {action}: one collection action,
# {p_sc}: probability the debit pays it without management.
MANAGEMENT_PAYS = (
    "managing pays: it lowers the roll risk from {p_no:.0%} to {p_act:.0%} on a roll loss of "
    "{loss:,.0f} pesos, {value:,.0f} pesos, more than the {action:,.0f} of a collection action "
    "(debit self-cure without management {p_sc:.0%})"
)
MANAGEMENT_DOES_NOT_PAY = (
    "managing does not pay: it lowers the roll risk from {p_no:.0%} to {p_act:.0%} on a roll loss "
    "of {loss:,.0f} pesos, {value:,.0f} pesos, less than the {action:,.0f} of a collection action "
    "(debit self-cure without management {p_sc:.0%})"
)
CAPACITY_LIMITED = (
    "team at capacity: managing would pay {net:,.0f} pesos net, less than the obligations kept "
    "for the team (roll risk {p_no:.0%} without management, {p_act:.0%} with it)"
)

# The roll model's effect of management is not identified (decision.policy): assigned as today.
# {low}/{high}: the 95% interval of the change in the odds of rolling that management brings.
EFFECT_NOT_IDENTIFIED = (
    "the randomized holdout does not yet show what collection management changes: with "
    "management the odds of rolling to 31+ days change by between {low:+.0%} and {high:+.0%} "
    "(95% interval), which does not show a reduction; managed as today until it does"
)
EFFECT_NOT_ESTIMATED = (
    "the randomized holdout does not yet show what collection management changes: too few "
    "unmanaged obligations with known outcomes to measure it; managed as today until it does"
)

# feature -> (reason template, words for a null value or None); `{value}` is the row's value,
# with a format spec (`{value:,.0f}`, `{value:.0%}`) formatted in this language's numbers.
REASONS: dict[str, tuple[str, str | None]] = {
    "product": ("product {value}", None),
    "segment": ("client segment {value}", None),
    "days_past_due": ("{value:.0f} days past due", None),
    "amount_past_due": ("{value:,.0f} pesos past due", None),
    "outstanding_balance": ("outstanding balance of {value:,.0f} pesos", None),
    "past_due_to_installment": ("{value:.1f} installments past due", None),
    "past_due_to_outstanding": ("past due is {value:.0%} of the balance", None),
    "outstanding_to_original": ("{value:.0%} of the original amount still owed", None),
    "days_past_due_prev_cut": (
        "{value:.0f} days past due at the previous cut",
        "no previous cut of the obligation",
    ),
    "installment_amount": ("installment of {value:,.0f} pesos", None),
    "annual_rate": ("annual rate {value:.1f}%", None),
    "due_day": ("installment due on day {value:.0f}", None),
    "obligation_age_months": ("obligation {value:.0f} months old", None),
    "months_to_maturity": ("{value:.0f} months to maturity", "revolving product, no maturity date"),
    "employment_type": ("employment {value}", "employment type not declared"),
    "age_band": ("age band {value}", "birth date not declared"),
    "client_tenure_months": ("client for {value:.0f} months", None),
    "monthly_income": ("declared income {value:,.0f} pesos", "income not declared"),
    "installment_to_income": (
        "installment is {value:.0%} of declared income",
        "income not declared",
    ),
    "n_products": ("{value:.0f} open obligations", None),
    "mandate_age_months": (
        "debit mandate {value:.0f} months old",
        "no debit mandate covers the cut",
    ),
    "account_bank": ("debit account at {value} bank", "no debit mandate covers the cut"),
    "account_type": ("{value} debit account", "no debit mandate covers the cut"),
    "debit_mode": ("debit mode {value}", "no debit mandate covers the cut"),
    "debit_attempts_3m": ("{value:.0f} debit attempts in the last 3 months", None),
    "debit_success_rate_3m": (
        "{value:.0%} of debits succeeded in the last 3 months",
        "no debit attempts in the last 3 months",
    ),
    "debit_partial_rate_3m": (
        "{value:.0%} of debits were partial in the last 3 months",
        "no debit attempts in the last 3 months",
    ),
    "debit_attempts_6m": ("{value:.0f} debit attempts in the last 6 months", None),
    "debit_success_rate_6m": (
        "{value:.0%} of debits succeeded in the last 6 months",
        "no debit attempts in the last 6 months",
    ),
    "debit_partial_rate_6m": (
        "{value:.0%} of debits were partial in the last 6 months",
        "no debit attempts in the last 6 months",
    ),
    "debit_attempts_12m": ("{value:.0f} debit attempts in the last 12 months", None),
    "debit_success_rate_12m": (
        "{value:.0%} of debits succeeded in the last 12 months",
        "no debit attempts in the last 12 months",
    ),
    "debit_partial_rate_12m": (
        "{value:.0%} of debits were partial in the last 12 months",
        "no debit attempts in the last 12 months",
    ),
    "debit_rejects_insufficient_funds_12m": (
        "{value:.0f} debits rejected for insufficient funds in 12 months",
        None,
    ),
    "debit_rejects_account_blocked_12m": (
        "{value:.0f} debits rejected for account blocked in 12 months",
        None,
    ),
    "debit_rejects_account_closed_12m": (
        "{value:.0f} debits rejected for account closed in 12 months",
        None,
    ),
    "debit_rejects_mandate_inactive_12m": (
        "{value:.0f} debits rejected for mandate inactive in 12 months",
        None,
    ),
    "debit_rejects_technical_12m": ("{value:.0f} debits rejected for technical in 12 months", None),
    "debit_insufficient_funds_share_12m": (
        "{value:.0%} of rejections were for insufficient funds",
        "no rejected debits in 12 months",
    ),
    "days_since_debit_success": (
        "last successful debit {value:.0f} days ago",
        "no fully successful debit in 12 months",
    ),
    "consecutive_debit_failures": ("{value:.0f} debit rejections in a row", None),
    "debit_success_day_12m": (
        "debits usually succeed on day {value:.0f}",
        "no fully successful debit in 12 months",
    ),
    "debit_day_minus_due_day": (
        "debits succeed {value:+.0f} days from the due day",
        "no fully successful debit in 12 months",
    ),
    "payments_3m": ("{value:.0f} payments in the last 3 months", None),
    "amount_paid_3m": ("{value:,.0f} pesos paid in the last 3 months", None),
    "debit_payment_share_3m": (
        "{value:.0%} of payments through the debit in the last 3 months",
        "no payments in the last 3 months",
    ),
    "payments_6m": ("{value:.0f} payments in the last 6 months", None),
    "amount_paid_6m": ("{value:,.0f} pesos paid in the last 6 months", None),
    "debit_payment_share_6m": (
        "{value:.0%} of payments through the debit in the last 6 months",
        "no payments in the last 6 months",
    ),
    "payments_12m": ("{value:.0f} payments in the last 12 months", None),
    "amount_paid_12m": ("{value:,.0f} pesos paid in the last 12 months", None),
    "debit_payment_share_12m": (
        "{value:.0%} of payments through the debit in the last 12 months",
        "no payments in the last 12 months",
    ),
    "other_channel_payments_12m": (
        "{value:.0f} payments through other channels in 12 months",
        None,
    ),
    "avg_balance_3m": (
        "average account balance {value:,.0f} pesos",
        "no balance data for the debit account in the last complete months (e.g. another bank's account)",
    ),
    "avg_balance_6m": (
        "6-month average account balance {value:,.0f} pesos",
        "no balance data for the debit account in the last complete months (e.g. another bank's account)",
    ),
    "min_balance_3m": (
        "lowest account balance {value:,.0f} pesos",
        "no balance data for the debit account in the last complete months (e.g. another bank's account)",
    ),
    "balance_trend_3m": (
        "account balance changed by {value:+,.0f} pesos",
        "less than 6 complete months of balance data for the debit account",
    ),
    "end_balance_last_month": (
        "month-end balance {value:,.0f} pesos",
        "no balance data for the debit account in the last complete months (e.g. another bank's account)",
    ),
    "balance_to_installment": (
        "balance covers {value:.1f} installments",
        "no balance data for the debit account in the last complete months (e.g. another bank's account)",
    ),
    "inflow_to_installment_3m": (
        "monthly inflows cover {value:.1f} installments",
        "no balance data for the debit account in the last complete months (e.g. another bank's account)",
    ),
    "outflow_to_inflow_3m": (
        "spends {value:.0%} of what comes in",
        "no balance data for the debit account in the last complete months (e.g. another bank's account)",
    ),
    "payroll_regularity_6m": (
        "payroll in {value:.0%} of recent months",
        "no balance data for the debit account in the last complete months (e.g. another bank's account)",
    ),
    "account_months_6m": ("{value:.0f} months of account history", None),
    "past_early_cuts_12m": ("{value:.0f} earlier early-delinquency episodes in 12 months", None),
    "past_cured_debit_12m": ("{value:.0f} earlier episodes cured by the debit", None),
    "past_cured_other_12m": ("{value:.0f} earlier episodes cured through other channels", None),
    "past_rolled_31_12m": ("{value:.0f} earlier episodes rolled past 30 days", None),
    "actions_3m": ("{value:.0f} collection actions in 3 months", None),
    "actions_12m": ("{value:.0f} collection actions in 12 months", None),
    "contacts_12m": ("reached {value:.0f} times in 12 months", None),
    "promises_12m": ("{value:.0f} promises to pay in 12 months", None),
    "days_since_last_action": (
        "last collection action {value:.0f} days ago",
        "no collection action in 12 months",
    ),
    "last_action_outcome": ("last collection outcome {value}", "no collection action in 12 months"),
}

# Features whose codes read in the words of `cobranza.labels` (kind by feature).
LABELLED: dict[str, str] = {"product": "product", "segment": "segment"}

# Category codes in words, where a sentence would otherwise carry a code.
VALUES: dict[str, dict[str, str]] = {}
