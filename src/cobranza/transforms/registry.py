"""The feature registry: every model input of `gold.obligation_snapshots` with its type, group,
look-back window and meaning.

The words a reason code shows for a feature live in `cobranza.decision.locales` (one module per
language); `Feature.reason` and `Feature.missing` are the English ones, which docs/features.md
shows. The computations are in `features`.
"""

from __future__ import annotations

from dataclasses import dataclass

from cobranza.contract import REJECT_REASONS

WINDOWS = (3, 6, 12)
EPISODE_WINDOW = 12
ACCOUNT_WINDOW = 6


@dataclass(frozen=True)
class Feature:
    """One model input: its column, type, look-back window and meaning."""

    name: str
    dtype: str  # float64, int64 or string (categorical)
    group: str
    window: str
    meaning: str

    @property
    def categorical(self) -> bool:
        return self.dtype == "string"

    def wording(self, language: str = "en") -> tuple[str, str | None]:
        """(reason template, words for a null value or None) in a language's locale."""
        from cobranza.decision.locales import load

        return load(language).REASONS[self.name]

    @property
    def reason(self) -> str:
        """The English reason template (`{value}` is the row's value)."""
        return self.wording()[0]

    @property
    def missing(self) -> str | None:
        """The English words for a null value, when null means something."""
        return self.wording()[1]


def _f(name, dtype, group, window, meaning) -> Feature:
    return Feature(name, dtype, group, window, meaning)


def _at_cut() -> list[Feature]:
    """Delinquency state and obligation terms at d."""
    return [
        # delinquency state at d (from the cut itself)
        _f("product", "string", "obligation", "at d", "Product of the obligation."),
        _f(
            "segment",
            "string",
            "client",
            "at extract",
            "Client segment, as of the extract (clients.csv has no history of it).",
        ),
        _f("days_past_due", "int64", "delinquency", "at d", "Days past due at the cut."),
        _f(
            "amount_past_due", "float64", "delinquency", "at d", "Amount past due at the cut (COP)."
        ),
        _f(
            "outstanding_balance",
            "float64",
            "delinquency",
            "at d",
            "Outstanding balance at the cut (COP).",
        ),
        _f(
            "past_due_to_installment",
            "float64",
            "delinquency",
            "at d",
            "Amount past due / installment at d (installment_amount): how many installments are owed.",
        ),
        _f(
            "past_due_to_outstanding",
            "float64",
            "delinquency",
            "at d",
            "Amount past due / outstanding balance.",
        ),
        _f(
            "outstanding_to_original",
            "float64",
            "delinquency",
            "at d",
            "Outstanding balance at d / original amount (credit limit for cards, as of the extract).",
        ),
        _f(
            "days_past_due_prev_cut",
            "int64",
            "delinquency",
            "previous cut",
            "Days past due at the obligation's previous cut (null when none).",
        ),
        # obligation terms
        _f(
            "installment_amount",
            "float64",
            "obligation",
            "at d",
            "Installment last due on or before d (a card's minimum payment of that month), COP, from "
            "installments.csv; the obligation's installment_amount, as of the extract, when none is "
            "due yet.",
        ),
        _f(
            "annual_rate",
            "float64",
            "obligation",
            "at extract",
            "Annual interest rate, percent, as of the extract.",
        ),
        _f(
            "due_day",
            "int64",
            "obligation",
            "at extract",
            "Day of month the installment falls due, as of the extract.",
        ),
        _f(
            "obligation_age_months",
            "int64",
            "obligation",
            "at d",
            "Calendar months from origination to d.",
        ),
        _f(
            "months_to_maturity",
            "int64",
            "obligation",
            "at d",
            "Calendar months from d to maturity (null for revolving products).",
        ),
    ]


def _client_and_mandate() -> list[Feature]:
    """The client at d, and the debit mandate covering d."""
    return [
        # client
        _f(
            "employment_type",
            "string",
            "client",
            "at extract",
            "Declared employment type, as of the extract (no history of it).",
        ),
        _f(
            "age_band",
            "string",
            "client",
            "at d",
            "Age band at d from the birth year (<25, 25-34, ..., 65+).",
        ),
        _f(
            "client_tenure_months",
            "int64",
            "client",
            "at d",
            "Calendar months the client has been with the bank at d.",
        ),
        _f(
            "monthly_income",
            "float64",
            "client",
            "at extract",
            "Declared monthly income (COP); declared once, not time-stamped.",
        ),
        _f(
            "installment_to_income",
            "float64",
            "client",
            "at extract",
            "Installment at d / declared monthly income, as of the extract (affordability).",
        ),
        _f(
            "n_products",
            "int64",
            "client",
            "at d",
            "Obligations of the client open at d (originated on or before d, not closed by d).",
        ),
        # mandate covering d
        _f(
            "mandate_age_months",
            "int64",
            "mandate",
            "at d",
            "Calendar months since the covering debit mandate started (null when none covers d).",
        ),
        _f(
            "account_bank",
            "string",
            "mandate",
            "at d",
            "OWN bank or OTHER bank (ACH) account of the covering mandate.",
        ),
        _f(
            "account_type",
            "string",
            "mandate",
            "at d",
            "SAVINGS or CHECKING account of the covering mandate.",
        ),
        _f(
            "debit_mode",
            "string",
            "mandate",
            "at d",
            "FULL or PARTIAL_ALLOWED debit of the covering mandate.",
        ),
    ]


def _debit_history() -> list[Feature]:
    """Recurring-debit attempts in the cut periods up to d."""
    f: list[Feature] = []
    for k in WINDOWS:
        f += [
            _f(
                f"debit_attempts_{k}m",
                "int64",
                "debit history",
                f"{k} cut periods to d",
                f"Recurring-debit attempts on the obligation in the last {k} months.",
            ),
            _f(
                f"debit_success_rate_{k}m",
                "float64",
                "debit history",
                f"{k} cut periods to d",
                f"Share of debit attempts that succeeded in full, last {k} months.",
            ),
            _f(
                f"debit_partial_rate_{k}m",
                "float64",
                "debit history",
                f"{k} cut periods to d",
                f"Share of debit attempts that debited only part, last {k} months.",
            ),
        ]
    for reason in REJECT_REASONS:
        f.append(
            _f(
                f"debit_rejects_{reason.lower()}_12m",
                "int64",
                "debit history",
                "12 cut periods to d",
                f"Debit attempts rejected for {reason}, last 12 months.",
            )
        )
    f += [
        _f(
            "debit_insufficient_funds_share_12m",
            "float64",
            "debit history",
            "12 cut periods to d",
            "Share of rejected debits rejected for INSUFFICIENT_FUNDS.",
        ),
        _f(
            "days_since_debit_success",
            "int64",
            "debit history",
            "12 cut periods to d",
            "Days from the last fully successful debit to d (null when none in 12 months).",
        ),
        _f(
            "consecutive_debit_failures",
            "int64",
            "debit history",
            "12 cut periods to d",
            "Rejected attempts since the last successful or partial debit, up to d.",
        ),
        _f(
            "debit_success_day_12m",
            "float64",
            "debit history",
            "12 cut periods to d",
            "Typical day of month the debit succeeds (mean day of successful debits). A proxy "
            "for when funds (payroll) arrive: account_monthly has no payroll day.",
        ),
        _f(
            "debit_day_minus_due_day",
            "float64",
            "debit history",
            "12 cut periods to d",
            "debit_success_day_12m minus the due day: positive when funds arrive after the due day.",
        ),
    ]
    return f


def _payments() -> list[Feature]:
    """Payments up to d, not reversed by d."""
    f: list[Feature] = []
    for k in WINDOWS:
        f += [
            _f(
                f"payments_{k}m",
                "int64",
                "payments",
                f"{k} cut periods to d",
                f"Payments on the obligation, any channel, last {k} months (not reversed by d).",
            ),
            _f(
                f"amount_paid_{k}m",
                "float64",
                "payments",
                f"{k} cut periods to d",
                f"Amount paid on the obligation, any channel, last {k} months (COP; not reversed "
                "by d).",
            ),
            _f(
                f"debit_payment_share_{k}m",
                "float64",
                "payments",
                f"{k} cut periods to d",
                f"Share of the amount paid (not reversed by d) through RECURRING_DEBIT, last {k} "
                "months.",
            ),
        ]
    f += [
        _f(
            "other_channel_payments_12m",
            "int64",
            "payments",
            "12 cut periods to d",
            "Payments through channels other than the debit, last 12 months (not reversed by d).",
        ),
    ]
    return f


def _account() -> list[Feature]:
    """The debit account over complete months up to d."""
    return [
        _f(
            "avg_balance_3m",
            "float64",
            "account",
            "3 complete months to d",
            "Mean of the debit account's average balance, last 3 complete months (COP).",
        ),
        _f(
            "avg_balance_6m",
            "float64",
            "account",
            "6 complete months to d",
            "Mean of the debit account's average balance, last 6 complete months (COP).",
        ),
        _f(
            "min_balance_3m",
            "float64",
            "account",
            "3 complete months to d",
            "Lowest balance of the debit account, last 3 complete months (COP).",
        ),
        _f(
            "balance_trend_3m",
            "float64",
            "account",
            "6 complete months to d",
            "Mean average balance of the last 3 complete months minus that of the 3 before.",
        ),
        _f(
            "end_balance_last_month",
            "float64",
            "account",
            "last complete month",
            "End-of-month balance of the last complete month (COP).",
        ),
        _f(
            "balance_to_installment",
            "float64",
            "account",
            "3 complete months to d",
            "avg_balance_3m / installment at d (installment_amount).",
        ),
        _f(
            "inflow_to_installment_3m",
            "float64",
            "account",
            "3 complete months to d",
            "Mean monthly inflow of the last 3 complete months / installment at d.",
        ),
        _f(
            "outflow_to_inflow_3m",
            "float64",
            "account",
            "3 complete months to d",
            "Total outflow / total inflow of the last 3 complete months.",
        ),
        _f(
            "payroll_regularity_6m",
            "float64",
            "account",
            "6 complete months to d",
            "Months with payroll inflow / months observed, last 6 complete months.",
        ),
        _f(
            "account_months_6m",
            "int64",
            "account",
            "6 complete months to d",
            "Complete months of account history seen, last 6.",
        ),
    ]


def _episodes_and_collection() -> list[Feature]:
    """Earlier early-delinquency episodes, and collection actions up to d."""
    return [
        _f(
            "past_early_cuts_12m",
            "int64",
            "episodes",
            "12 previous cuts",
            "Earlier cuts of the obligation in early delinquency (1-30 days), last 12 cuts.",
        ),
        _f(
            "past_cured_debit_12m",
            "int64",
            "episodes",
            "12 previous cuts, horizon ended by d",
            "Earlier episodes cured only through the debit within the horizon.",
        ),
        _f(
            "past_cured_other_12m",
            "int64",
            "episodes",
            "12 previous cuts, horizon ended by d",
            "Earlier episodes covered within the horizon with some payment by another channel.",
        ),
        _f(
            "past_rolled_31_12m",
            "int64",
            "episodes",
            "12 previous cuts, next cut seen by d",
            "Earlier episodes whose next cut showed more than 30 days past due.",
        ),
        _f(
            "actions_3m",
            "int64",
            "collection",
            "3 cut periods to d",
            "Collection actions received, last 3 months.",
        ),
        _f(
            "actions_12m",
            "int64",
            "collection",
            "12 cut periods to d",
            "Collection actions received, last 12 months.",
        ),
        _f(
            "contacts_12m",
            "int64",
            "collection",
            "12 cut periods to d",
            "Actions that reached the client (CONTACTED or PROMISE_TO_PAY), last 12 months.",
        ),
        _f(
            "promises_12m",
            "int64",
            "collection",
            "12 cut periods to d",
            "Promises to pay obtained, last 12 months.",
        ),
        _f(
            "days_since_last_action",
            "int64",
            "collection",
            "12 cut periods to d",
            "Days from the last collection action to d (null when none in 12 months).",
        ),
        _f(
            "last_action_outcome",
            "string",
            "collection",
            "12 cut periods to d",
            "Outcome of the last collection action (null when none in 12 months).",
        ),
    ]


def _registry() -> tuple[Feature, ...]:
    f = [
        *_at_cut(),
        *_client_and_mandate(),
        *_debit_history(),
        *_payments(),
        *_account(),
        *_episodes_and_collection(),
    ]
    names = [x.name for x in f]
    assert len(names) == len(set(names)), "duplicate feature names"
    return tuple(f)


FEATURES: tuple[Feature, ...] = _registry()
FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
