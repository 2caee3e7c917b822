"""Point-in-time feature groups of `gold.obligation_snapshots` and the FEATURES registry documenting them.

Every feature of a row at cut date d uses only data stamped on or before d. Events (debit attempts,
payments, collection actions) are first aggregated by (obligation, cut period): period k holds the
days in (cut k-1, cut k], so period p ends exactly at d. Windows of n months are then range joins of
those aggregates to the cuts on `period` in (p-n, p], never row-by-row loops. Account months are
used only once complete (the month's last day <= d). Episode outcomes of past cuts count only when
fully observed by d (horizon ended and next cut seen on or before d). Mandate `status` and obligation
`status` describe the extract date, so they are never features.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import ibis
import ibis.expr.types as ir

from cobranza.contract import DEBIT_CHANNEL, REJECT_REASONS

WINDOWS = (3, 6, 12)
EPISODE_WINDOW = 12
ACCOUNT_WINDOW = 6


@dataclass(frozen=True)
class Feature:
    """One model input: its column, type, look-back window, meaning and reason-code wording."""

    name: str
    dtype: str  # float64, int64 or string (categorical)
    group: str
    window: str
    meaning: str
    reason: str  # plain words; `{value}` is the row's value (format spec allowed)
    missing: str | None = None  # plain words for a null value, when null means something
    reason_es: str = ""  # the same in Spanish, for the collections team (`reason_language = "es"`)
    missing_es: str | None = None

    @property
    def categorical(self) -> bool:
        return self.dtype == "string"


def _f(name, dtype, group, window, meaning, reason) -> Feature:
    return Feature(name, dtype, group, window, meaning, reason)


def _registry() -> tuple[Feature, ...]:
    f: list[Feature] = [
        # delinquency state at d (from the cut itself)
        _f(
            "product",
            "string",
            "obligation",
            "at d",
            "Product of the obligation.",
            "product {value}",
        ),
        _f(
            "segment",
            "string",
            "client",
            "at extract",
            "Client segment, as of the extract (clients.csv has no history of it).",
            "client segment {value}",
        ),
        _f(
            "days_past_due",
            "int64",
            "delinquency",
            "at d",
            "Days past due at the cut.",
            "{value:.0f} days past due",
        ),
        _f(
            "amount_past_due",
            "float64",
            "delinquency",
            "at d",
            "Amount past due at the cut (COP).",
            "{value:,.0f} pesos past due",
        ),
        _f(
            "outstanding_balance",
            "float64",
            "delinquency",
            "at d",
            "Outstanding balance at the cut (COP).",
            "outstanding balance of {value:,.0f} pesos",
        ),
        _f(
            "past_due_to_installment",
            "float64",
            "delinquency",
            "at d",
            "Amount past due / installment amount: how many installments are owed.",
            "{value:.1f} installments past due",
        ),
        _f(
            "past_due_to_outstanding",
            "float64",
            "delinquency",
            "at d",
            "Amount past due / outstanding balance.",
            "past due is {value:.0%} of the balance",
        ),
        _f(
            "outstanding_to_original",
            "float64",
            "delinquency",
            "at d",
            "Outstanding balance at d / original amount (credit limit for cards, as of the extract).",
            "{value:.0%} of the original amount still owed",
        ),
        _f(
            "days_past_due_prev_cut",
            "int64",
            "delinquency",
            "previous cut",
            "Days past due at the obligation's previous cut (null when none).",
            "{value:.0f} days past due at the previous cut",
        ),
        # obligation terms
        _f(
            "installment_amount",
            "float64",
            "obligation",
            "at extract",
            "Installment (minimum payment for cards), COP, as of the extract.",
            "installment of {value:,.0f} pesos",
        ),
        _f(
            "annual_rate",
            "float64",
            "obligation",
            "at extract",
            "Annual interest rate, percent, as of the extract.",
            "annual rate {value:.1f}%",
        ),
        _f(
            "due_day",
            "int64",
            "obligation",
            "at extract",
            "Day of month the installment falls due, as of the extract.",
            "installment due on day {value:.0f}",
        ),
        _f(
            "obligation_age_months",
            "int64",
            "obligation",
            "at d",
            "Calendar months from origination to d.",
            "obligation {value:.0f} months old",
        ),
        _f(
            "months_to_maturity",
            "int64",
            "obligation",
            "at d",
            "Calendar months from d to maturity (null for revolving products).",
            "{value:.0f} months to maturity",
        ),
        # client
        _f(
            "employment_type",
            "string",
            "client",
            "at extract",
            "Declared employment type, as of the extract (no history of it).",
            "employment {value}",
        ),
        _f(
            "age_band",
            "string",
            "client",
            "at d",
            "Age band at d from the birth year (<25, 25-34, ..., 65+).",
            "age band {value}",
        ),
        _f(
            "client_tenure_months",
            "int64",
            "client",
            "at d",
            "Calendar months the client has been with the bank at d.",
            "client for {value:.0f} months",
        ),
        _f(
            "monthly_income",
            "float64",
            "client",
            "at extract",
            "Declared monthly income (COP); declared once, not time-stamped.",
            "declared income {value:,.0f} pesos",
        ),
        _f(
            "installment_to_income",
            "float64",
            "client",
            "at extract",
            "Installment / declared monthly income (affordability).",
            "installment is {value:.0%} of declared income",
        ),
        _f(
            "n_products",
            "int64",
            "client",
            "at d",
            "Obligations of the client open at d (originated on or before d, not closed by d).",
            "{value:.0f} open obligations",
        ),
        # mandate covering d
        _f(
            "mandate_age_months",
            "int64",
            "mandate",
            "at d",
            "Calendar months since the covering debit mandate started (null when none covers d).",
            "debit mandate {value:.0f} months old",
        ),
        _f(
            "account_bank",
            "string",
            "mandate",
            "at d",
            "OWN bank or OTHER bank (ACH) account of the covering mandate.",
            "debit account at {value} bank",
        ),
        _f(
            "account_type",
            "string",
            "mandate",
            "at d",
            "SAVINGS or CHECKING account of the covering mandate.",
            "{value} debit account",
        ),
        _f(
            "debit_mode",
            "string",
            "mandate",
            "at d",
            "FULL or PARTIAL_ALLOWED debit of the covering mandate.",
            "debit mode {value}",
        ),
    ]
    for k in WINDOWS:
        f += [
            _f(
                f"debit_attempts_{k}m",
                "int64",
                "debit history",
                f"{k} cut periods to d",
                f"Recurring-debit attempts on the obligation in the last {k} months.",
                f"{{value:.0f}} debit attempts in the last {k} months",
            ),
            _f(
                f"debit_success_rate_{k}m",
                "float64",
                "debit history",
                f"{k} cut periods to d",
                f"Share of debit attempts that succeeded in full, last {k} months.",
                f"{{value:.0%}} of debits succeeded in the last {k} months",
            ),
            _f(
                f"debit_partial_rate_{k}m",
                "float64",
                "debit history",
                f"{k} cut periods to d",
                f"Share of debit attempts that debited only part, last {k} months.",
                f"{{value:.0%}} of debits were partial in the last {k} months",
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
                f"{{value:.0f}} debits rejected for {reason.lower().replace('_', ' ')} in 12 months",
            )
        )
    f += [
        _f(
            "debit_insufficient_funds_share_12m",
            "float64",
            "debit history",
            "12 cut periods to d",
            "Share of rejected debits rejected for INSUFFICIENT_FUNDS.",
            "{value:.0%} of rejections were for insufficient funds",
        ),
        _f(
            "days_since_debit_success",
            "int64",
            "debit history",
            "12 cut periods to d",
            "Days from the last fully successful debit to d (null when none in 12 months).",
            "last successful debit {value:.0f} days ago",
        ),
        _f(
            "consecutive_debit_failures",
            "int64",
            "debit history",
            "12 cut periods to d",
            "Rejected attempts since the last successful or partial debit, up to d.",
            "{value:.0f} debit rejections in a row",
        ),
        _f(
            "debit_success_day_12m",
            "float64",
            "debit history",
            "12 cut periods to d",
            "Typical day of month the debit succeeds (mean day of successful debits). A proxy "
            "for when funds (payroll) arrive: account_monthly has no payroll day.",
            "debits usually succeed on day {value:.0f}",
        ),
        _f(
            "debit_day_minus_due_day",
            "float64",
            "debit history",
            "12 cut periods to d",
            "debit_success_day_12m minus the due day: positive when funds arrive after the due day.",
            "debits succeed {value:+.0f} days from the due day",
        ),
    ]
    for k in WINDOWS:
        f += [
            _f(
                f"payments_{k}m",
                "int64",
                "payments",
                f"{k} cut periods to d",
                f"Payments on the obligation, any channel, last {k} months.",
                f"{{value:.0f}} payments in the last {k} months",
            ),
            _f(
                f"amount_paid_{k}m",
                "float64",
                "payments",
                f"{k} cut periods to d",
                f"Amount paid on the obligation, any channel, last {k} months (COP).",
                f"{{value:,.0f}} pesos paid in the last {k} months",
            ),
            _f(
                f"debit_payment_share_{k}m",
                "float64",
                "payments",
                f"{k} cut periods to d",
                f"Share of the amount paid through RECURRING_DEBIT, last {k} months.",
                f"{{value:.0%}} of payments through the debit in the last {k} months",
            ),
        ]
    f += [
        _f(
            "other_channel_payments_12m",
            "int64",
            "payments",
            "12 cut periods to d",
            "Payments through channels other than the debit, last 12 months.",
            "{value:.0f} payments through other channels in 12 months",
        ),
        _f(
            "avg_balance_3m",
            "float64",
            "account",
            "3 complete months to d",
            "Mean of the debit account's average balance, last 3 complete months (COP).",
            "average account balance {value:,.0f} pesos",
        ),
        _f(
            "avg_balance_6m",
            "float64",
            "account",
            "6 complete months to d",
            "Mean of the debit account's average balance, last 6 complete months (COP).",
            "6-month average account balance {value:,.0f} pesos",
        ),
        _f(
            "min_balance_3m",
            "float64",
            "account",
            "3 complete months to d",
            "Lowest balance of the debit account, last 3 complete months (COP).",
            "lowest account balance {value:,.0f} pesos",
        ),
        _f(
            "balance_trend_3m",
            "float64",
            "account",
            "6 complete months to d",
            "Mean average balance of the last 3 complete months minus that of the 3 before.",
            "account balance changed by {value:+,.0f} pesos",
        ),
        _f(
            "end_balance_last_month",
            "float64",
            "account",
            "last complete month",
            "End-of-month balance of the last complete month (COP).",
            "month-end balance {value:,.0f} pesos",
        ),
        _f(
            "balance_to_installment",
            "float64",
            "account",
            "3 complete months to d",
            "avg_balance_3m / installment amount.",
            "balance covers {value:.1f} installments",
        ),
        _f(
            "inflow_to_installment_3m",
            "float64",
            "account",
            "3 complete months to d",
            "Mean monthly inflow of the last 3 complete months / installment amount.",
            "monthly inflows cover {value:.1f} installments",
        ),
        _f(
            "outflow_to_inflow_3m",
            "float64",
            "account",
            "3 complete months to d",
            "Total outflow / total inflow of the last 3 complete months.",
            "spends {value:.0%} of what comes in",
        ),
        _f(
            "payroll_regularity_6m",
            "float64",
            "account",
            "6 complete months to d",
            "Months with payroll inflow / months observed, last 6 complete months.",
            "payroll in {value:.0%} of recent months",
        ),
        _f(
            "account_months_6m",
            "int64",
            "account",
            "6 complete months to d",
            "Complete months of account history seen, last 6.",
            "{value:.0f} months of account history",
        ),
        _f(
            "past_early_cuts_12m",
            "int64",
            "episodes",
            "12 previous cuts",
            "Earlier cuts of the obligation in early delinquency (1-30 days), last 12 cuts.",
            "{value:.0f} earlier early-delinquency episodes in 12 months",
        ),
        _f(
            "past_cured_debit_12m",
            "int64",
            "episodes",
            "12 previous cuts, horizon ended by d",
            "Earlier episodes cured only through the debit within the horizon.",
            "{value:.0f} earlier episodes cured by the debit",
        ),
        _f(
            "past_cured_other_12m",
            "int64",
            "episodes",
            "12 previous cuts, horizon ended by d",
            "Earlier episodes covered within the horizon with some payment by another channel.",
            "{value:.0f} earlier episodes cured through other channels",
        ),
        _f(
            "past_rolled_31_12m",
            "int64",
            "episodes",
            "12 previous cuts, next cut seen by d",
            "Earlier episodes whose next cut showed more than 30 days past due.",
            "{value:.0f} earlier episodes rolled past 30 days",
        ),
        _f(
            "actions_3m",
            "int64",
            "collection",
            "3 cut periods to d",
            "Collection actions received, last 3 months.",
            "{value:.0f} collection actions in 3 months",
        ),
        _f(
            "actions_12m",
            "int64",
            "collection",
            "12 cut periods to d",
            "Collection actions received, last 12 months.",
            "{value:.0f} collection actions in 12 months",
        ),
        _f(
            "contacts_12m",
            "int64",
            "collection",
            "12 cut periods to d",
            "Actions that reached the client (CONTACTED or PROMISE_TO_PAY), last 12 months.",
            "reached {value:.0f} times in 12 months",
        ),
        _f(
            "promises_12m",
            "int64",
            "collection",
            "12 cut periods to d",
            "Promises to pay obtained, last 12 months.",
            "{value:.0f} promises to pay in 12 months",
        ),
        _f(
            "days_since_last_action",
            "int64",
            "collection",
            "12 cut periods to d",
            "Days from the last collection action to d (null when none in 12 months).",
            "last collection action {value:.0f} days ago",
        ),
        _f(
            "last_action_outcome",
            "string",
            "collection",
            "12 cut periods to d",
            "Outcome of the last collection action (null when none in 12 months).",
            "last collection outcome {value}",
        ),
    ]
    names = [x.name for x in f]
    assert len(names) == len(set(names)), "duplicate feature names"
    unknown = set(MISSING) - set(names)
    assert not unknown, f"missing-value wording for unknown features: {sorted(unknown)}"
    assert set(REASONS_ES) == set(names), sorted(set(names) ^ set(REASONS_ES))
    assert set(MISSING_ES) == set(MISSING), sorted(set(MISSING) ^ set(MISSING_ES))
    return tuple(
        replace(
            x,
            missing=MISSING.get(x.name),
            reason_es=REASONS_ES[x.name],
            missing_es=MISSING_ES.get(x.name),
        )
        for x in f
    )


_NO_BALANCE = "no balance data for the debit account in the last complete months (e.g. another bank's account)"
# What a null says, in the words of a reason code: a null is often the reason itself (no successful
# debit in a year, no balance data for an account at another bank), never "feature: no data".
MISSING: dict[str, str] = {
    "days_past_due_prev_cut": "no previous cut of the obligation",
    "months_to_maturity": "revolving product, no maturity date",
    "monthly_income": "income not declared",
    "installment_to_income": "income not declared",
    "employment_type": "employment type not declared",
    "age_band": "birth date not declared",
    "mandate_age_months": "no debit mandate covers the cut",
    "account_bank": "no debit mandate covers the cut",
    "account_type": "no debit mandate covers the cut",
    "debit_mode": "no debit mandate covers the cut",
    **{f"debit_success_rate_{k}m": f"no debit attempts in the last {k} months" for k in WINDOWS},
    **{f"debit_partial_rate_{k}m": f"no debit attempts in the last {k} months" for k in WINDOWS},
    "debit_insufficient_funds_share_12m": "no rejected debits in 12 months",
    "days_since_debit_success": "no fully successful debit in 12 months",
    "debit_success_day_12m": "no fully successful debit in 12 months",
    "debit_day_minus_due_day": "no fully successful debit in 12 months",
    **{f"debit_payment_share_{k}m": f"no payments in the last {k} months" for k in WINDOWS},
    **{
        name: _NO_BALANCE
        for name in (
            "avg_balance_3m",
            "avg_balance_6m",
            "min_balance_3m",
            "end_balance_last_month",
            "balance_to_installment",
            "inflow_to_installment_3m",
            "outflow_to_inflow_3m",
            "payroll_regularity_6m",
        )
    },
    "balance_trend_3m": "less than 6 complete months of balance data for the debit account",
    "days_since_last_action": "no collection action in 12 months",
    "last_action_outcome": "no collection action in 12 months",
}

# Spanish wording, the collections team's language; same placeholders and format specs as the
# English templates (numbers get Colombian separators when formatted: 1.390.000; 1,5).
_REJECT_ES = {
    "INSUFFICIENT_FUNDS": "fondos insuficientes",
    "ACCOUNT_BLOCKED": "cuenta bloqueada",
    "ACCOUNT_CLOSED": "cuenta cerrada",
    "MANDATE_INACTIVE": "mandato inactivo",
    "TECHNICAL": "falla técnica",
}
REASONS_ES: dict[str, str] = {
    "product": "producto {value}",
    "segment": "segmento del cliente {value}",
    "days_past_due": "{value:.0f} días de mora",
    "amount_past_due": "{value:,.0f} pesos vencidos",
    "outstanding_balance": "saldo de {value:,.0f} pesos",
    "past_due_to_installment": "{value:.1f} cuotas vencidas",
    "past_due_to_outstanding": "lo vencido es el {value:.0%} del saldo",
    "outstanding_to_original": "debe aún el {value:.0%} del monto original",
    "days_past_due_prev_cut": "{value:.0f} días de mora en el corte anterior",
    "installment_amount": "cuota de {value:,.0f} pesos",
    "annual_rate": "tasa anual de {value:.1f}%",
    "due_day": "cuota con vencimiento el día {value:.0f}",
    "obligation_age_months": "obligación de {value:.0f} meses",
    "months_to_maturity": "faltan {value:.0f} meses para el vencimiento",
    "employment_type": "empleo {value}",
    "age_band": "rango de edad {value}",
    "client_tenure_months": "cliente hace {value:.0f} meses",
    "monthly_income": "ingreso declarado de {value:,.0f} pesos",
    "installment_to_income": "la cuota es el {value:.0%} del ingreso declarado",
    "n_products": "{value:.0f} obligaciones abiertas",
    "mandate_age_months": "mandato de débito de {value:.0f} meses",
    "account_bank": "cuenta de débito en banco {value}",
    "account_type": "cuenta de débito {value}",
    "debit_mode": "modo de débito {value}",
    **{
        name: text
        for k in WINDOWS
        for name, text in (
            (f"debit_attempts_{k}m", f"{{value:.0f}} intentos de débito en los últimos {k} meses"),
            (
                f"debit_success_rate_{k}m",
                f"{{value:.0%}} de los débitos exitosos en los últimos {k} meses",
            ),
            (
                f"debit_partial_rate_{k}m",
                f"{{value:.0%}} de los débitos parciales en los últimos {k} meses",
            ),
            (f"payments_{k}m", f"{{value:.0f}} pagos en los últimos {k} meses"),
            (f"amount_paid_{k}m", f"{{value:,.0f}} pesos pagados en los últimos {k} meses"),
            (
                f"debit_payment_share_{k}m",
                f"{{value:.0%}} de lo pagado fue por débito en los últimos {k} meses",
            ),
        )
    },
    **{
        f"debit_rejects_{reason.lower()}_12m": f"{{value:.0f}} débitos rechazados por "
        f"{_REJECT_ES[reason]} en 12 meses"
        for reason in REJECT_REASONS
    },
    "debit_insufficient_funds_share_12m": "{value:.0%} de los rechazos fueron por fondos insuficientes",
    "days_since_debit_success": "último débito exitoso hace {value:.0f} días",
    "consecutive_debit_failures": "{value:.0f} rechazos de débito seguidos",
    "debit_success_day_12m": "los débitos suelen pasar el día {value:.0f}",
    "debit_day_minus_due_day": "los débitos pasan {value:+.0f} días respecto al vencimiento",
    "other_channel_payments_12m": "{value:.0f} pagos por otros canales en 12 meses",
    "avg_balance_3m": "saldo promedio de la cuenta de {value:,.0f} pesos",
    "avg_balance_6m": "saldo promedio de 6 meses de {value:,.0f} pesos",
    "min_balance_3m": "saldo mínimo de la cuenta de {value:,.0f} pesos",
    "balance_trend_3m": "el saldo de la cuenta cambió {value:+,.0f} pesos",
    "end_balance_last_month": "saldo a fin de mes de {value:,.0f} pesos",
    "balance_to_installment": "el saldo cubre {value:.1f} cuotas",
    "inflow_to_installment_3m": "los ingresos mensuales cubren {value:.1f} cuotas",
    "outflow_to_inflow_3m": "gasta el {value:.0%} de lo que le ingresa",
    "payroll_regularity_6m": "nómina en el {value:.0%} de los meses recientes",
    "account_months_6m": "{value:.0f} meses de historia de la cuenta",
    "past_early_cuts_12m": "{value:.0f} episodios previos de mora temprana en 12 meses",
    "past_cured_debit_12m": "{value:.0f} episodios previos curados por el débito",
    "past_cured_other_12m": "{value:.0f} episodios previos curados por otros canales",
    "past_rolled_31_12m": "{value:.0f} episodios previos que pasaron de 30 días de mora",
    "actions_3m": "{value:.0f} gestiones de cobranza en 3 meses",
    "actions_12m": "{value:.0f} gestiones de cobranza en 12 meses",
    "contacts_12m": "contactado {value:.0f} veces en 12 meses",
    "promises_12m": "{value:.0f} promesas de pago en 12 meses",
    "days_since_last_action": "última gestión de cobranza hace {value:.0f} días",
    "last_action_outcome": "resultado de la última gestión {value}",
}
# Category codes in words, where a Spanish sentence would otherwise carry an English code
# (product and segment codes stay: the team filters by them).
VALUES_ES: dict[str, dict[str, str]] = {
    "account_bank": {"OWN": "propio", "OTHER": "de otra entidad (ACH)"},
    "account_type": {"SAVINGS": "de ahorros", "CHECKING": "corriente"},
    "debit_mode": {"FULL": "total", "PARTIAL_ALLOWED": "con débito parcial"},
    "employment_type": {
        "SALARIED": "asalariado",
        "INDEPENDENT": "independiente",
        "PENSIONER": "pensionado",
        "OTHER": "otro",
    },
    "last_action_outcome": {
        "CONTACTED": "contactado",
        "PROMISE_TO_PAY": "promesa de pago",
        "NO_CONTACT": "sin contacto",
        "WRONG_NUMBER": "número equivocado",
        "REFUSED": "se negó a pagar",
    },
}
_NO_BALANCE_ES = (
    "sin datos de saldo de la cuenta de débito en los últimos meses completos "
    "(p. ej. cuenta en otro banco)"
)
_NO_MANDATE_ES = "ningún mandato de débito cubre el corte"
_NO_SUCCESS_ES = "sin débito exitoso completo en 12 meses"
_NO_ACTION_ES = "sin gestiones de cobranza en 12 meses"
MISSING_ES: dict[str, str] = {
    "days_past_due_prev_cut": "sin corte anterior de la obligación",
    "months_to_maturity": "producto rotativo, sin fecha de vencimiento",
    "monthly_income": "ingreso no declarado",
    "installment_to_income": "ingreso no declarado",
    "employment_type": "tipo de empleo no declarado",
    "age_band": "fecha de nacimiento no declarada",
    "mandate_age_months": _NO_MANDATE_ES,
    "account_bank": _NO_MANDATE_ES,
    "account_type": _NO_MANDATE_ES,
    "debit_mode": _NO_MANDATE_ES,
    **{
        f"debit_success_rate_{k}m": f"sin intentos de débito en los últimos {k} meses"
        for k in WINDOWS
    },
    **{
        f"debit_partial_rate_{k}m": f"sin intentos de débito en los últimos {k} meses"
        for k in WINDOWS
    },
    "debit_insufficient_funds_share_12m": "sin débitos rechazados en 12 meses",
    "days_since_debit_success": _NO_SUCCESS_ES,
    "debit_success_day_12m": _NO_SUCCESS_ES,
    "debit_day_minus_due_day": _NO_SUCCESS_ES,
    **{f"debit_payment_share_{k}m": f"sin pagos en los últimos {k} meses" for k in WINDOWS},
    **{name: _NO_BALANCE_ES for name, text in MISSING.items() if text == _NO_BALANCE},
    "balance_trend_3m": "menos de 6 meses completos de datos de saldo de la cuenta de débito",
    "days_since_last_action": _NO_ACTION_ES,
    "last_action_outcome": _NO_ACTION_ES,
}


FEATURES: tuple[Feature, ...] = _registry()
FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}


# ---- helpers ------------------------------------------------------------------------------------
def month_index(d: ir.DateValue) -> ir.IntegerValue:
    return (d.year() * 12 + d.month()).cast("int64")


def ratio(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    """num / den, null when den is null or zero (Spark's ANSI mode raises on division by zero)."""
    return num.cast("float64") / den.cast("float64").nullif(0.0)


def _count_if(cond: ir.BooleanValue) -> ir.IntegerValue:
    return cond.ifelse(1, 0).cast("int64")


def _sum_if(cond: ir.BooleanValue, value: ir.NumericValue) -> ir.NumericValue:
    return cond.ifelse(value, 0).sum()


def _days(later: ir.DateValue, earlier: ir.DateValue) -> ir.IntegerValue:
    return later.delta(earlier, unit="day").cast("int64")


def assign_period(events: ir.Table, date_col: str, calendar: ir.Table) -> ir.Table:
    """Tag events with their cut period; events after the last cut get none and are dropped.

    Distinct event dates (a few thousand) are range-joined to the calendar; the events then get
    their period through an equi-join on the date, which both engines hash-join cheaply.
    """
    dates = events.select(ev_date=events[date_col]).distinct()
    cal = calendar.select(
        c_cut_date=calendar.cut_date, c_period=calendar.period, c_start=calendar.period_start
    )
    lookup = dates.join(
        cal,
        [dates.ev_date <= cal.c_cut_date, cal.c_start.isnull() | (dates.ev_date > cal.c_start)],
    ).select(ev_date="ev_date", period="c_period")
    j = events.join(lookup, events[date_col] == lookup.ev_date)
    return j.drop("ev_date")


def _window_join(spine: ir.Table, agg: ir.Table, window: int, include_current: bool = True):
    """Spine rows (obligation_id, cut_date, period) with the aggregates of the last `window` periods."""
    a = agg.rename(a_obligation_id="obligation_id", a_period="period")
    s = spine.select("obligation_id", "cut_date", "period")
    upper = s.period if include_current else s.period - 1
    lower = s.period - window + (1 if include_current else 0)
    return s.join(
        a,
        [s.obligation_id == a.a_obligation_id, a.a_period >= lower, a.a_period <= upper],
        how="left",
    )


# ---- per-period aggregates of events --------------------------------------------------------------
def attempts_by_period(attempts: ir.Table, calendar: ir.Table) -> ir.Table:
    a = assign_period(attempts, "attempt_date", calendar)
    ok = a.result.isin(["SUCCESS", "PARTIAL"])
    last_ok_ts = (
        ok.ifelse(a.attempt_ts, ibis.null()).max().over(group_by=[a.obligation_id, a.period])
    )
    a = a.mutate(ok=ok, last_ok_ts=last_ok_ts)
    after_ok = a.last_ok_ts.isnull() | (a.attempt_ts > a.last_ok_ts)
    success = a.result == "SUCCESS"
    aggs = {
        "n_attempts": a.count(),
        "n_success": _count_if(success).sum(),
        "n_partial": _count_if(a.result == "PARTIAL").sum(),
        "n_rejected": _count_if(a.result == "REJECTED").sum(),
        "has_ok": _count_if(a.ok).max(),
        "tail_failures": _count_if((a.result == "REJECTED") & after_ok).sum(),
        "last_success_date": success.ifelse(a.attempt_date, ibis.null()).max(),
        "success_day_sum": success.ifelse(a.attempt_date.day(), 0).cast("int64").sum(),
    }
    for reason in REJECT_REASONS:
        aggs[f"n_reject_{reason.lower()}"] = _count_if(
            (a.result == "REJECTED") & (a.reject_reason == reason)
        ).sum()
    return a.group_by(["obligation_id", "period"]).aggregate(**aggs)


def payments_by_period(payments: ir.Table, calendar: ir.Table) -> ir.Table:
    p = assign_period(payments, "payment_date", calendar)
    debit = p.channel == DEBIT_CHANNEL
    return p.group_by(["obligation_id", "period"]).aggregate(
        n_payments=p.count(),
        amount_paid=p.amount.sum(),
        n_debit_payments=_count_if(debit).sum(),
        amount_debit=debit.ifelse(p.amount, 0.0).sum(),
    )


def actions_by_period(actions: ir.Table, calendar: ir.Table) -> ir.Table:
    a = assign_period(actions, "action_date", calendar)
    return a.group_by(["obligation_id", "period"]).aggregate(
        n_actions=a.count(),
        n_contacts=_count_if(a.outcome.isin(["CONTACTED", "PROMISE_TO_PAY"])).sum(),
        n_promises=_count_if(a.outcome == "PROMISE_TO_PAY").sum(),
        last_action_ts=a.action_ts.max(),
        last_action_date=a.action_date.max(),
        last_outcome=a.outcome.argmax(a.action_ts),
    )


# ---- feature groups: spine in, (obligation_id, cut_date, features...) out ---------------------------
def debit_history_features(spine: ir.Table, by_period: ir.Table) -> ir.Table:
    j = _window_join(spine, by_period, max(WINDOWS))
    last_ok_period = (
        (j.has_ok > 0)
        .ifelse(j.a_period, ibis.null())
        .max()
        .over(group_by=[j.obligation_id, j.cut_date])
    )
    j = j.mutate(last_ok_period=last_ok_period)
    aggs: dict[str, ir.Value] = {}
    for k in WINDOWS:
        inside = j.a_period > j.period - k
        attempts = _sum_if(inside, j.n_attempts)
        aggs[f"debit_attempts_{k}m"] = attempts.fill_null(0)
        aggs[f"debit_success_rate_{k}m"] = ratio(_sum_if(inside, j.n_success), attempts)
        aggs[f"debit_partial_rate_{k}m"] = ratio(_sum_if(inside, j.n_partial), attempts)
    for reason in REJECT_REASONS:
        aggs[f"debit_rejects_{reason.lower()}_12m"] = (
            j[f"n_reject_{reason.lower()}"].sum().fill_null(0)
        )
    aggs["debit_insufficient_funds_share_12m"] = ratio(
        j.n_reject_insufficient_funds.sum(), j.n_rejected.sum()
    )
    aggs["last_success"] = j.last_success_date.max()
    aggs["consecutive_debit_failures"] = _sum_if(
        j.a_period >= j.last_ok_period.fill_null(0), j.tail_failures
    ).fill_null(0)
    aggs["debit_success_day_12m"] = ratio(j.success_day_sum.sum(), j.n_success.sum())
    out = j.group_by(["obligation_id", "cut_date"]).aggregate(**aggs)
    return out.mutate(days_since_debit_success=_days(out.cut_date, out.last_success)).drop(
        "last_success"
    )


def payment_features(spine: ir.Table, by_period: ir.Table) -> ir.Table:
    j = _window_join(spine, by_period, max(WINDOWS))
    aggs: dict[str, ir.Value] = {}
    for k in WINDOWS:
        inside = j.a_period > j.period - k
        paid = _sum_if(inside, j.amount_paid)
        aggs[f"payments_{k}m"] = _sum_if(inside, j.n_payments).fill_null(0)
        aggs[f"amount_paid_{k}m"] = paid.fill_null(0.0)
        aggs[f"debit_payment_share_{k}m"] = ratio(_sum_if(inside, j.amount_debit), paid)
    aggs["other_channel_payments_12m"] = (j.n_payments - j.n_debit_payments).sum().fill_null(0)
    return j.group_by(["obligation_id", "cut_date"]).aggregate(**aggs)


def action_features(spine: ir.Table, by_period: ir.Table) -> ir.Table:
    j = _window_join(spine, by_period, 12)
    out = j.group_by(["obligation_id", "cut_date"]).aggregate(
        actions_3m=_sum_if(j.a_period > j.period - 3, j.n_actions).fill_null(0),
        actions_12m=j.n_actions.sum().fill_null(0),
        contacts_12m=j.n_contacts.sum().fill_null(0),
        promises_12m=j.n_promises.sum().fill_null(0),
        last_action=j.last_action_date.max(),
        last_action_outcome=j.last_outcome.argmax(j.last_action_ts),
    )
    return out.mutate(days_since_last_action=_days(out.cut_date, out.last_action)).drop(
        "last_action"
    )


def episode_outcomes(cuts: ir.Table, calendar: ir.Table, outcome: ir.Table) -> ir.Table:
    """Past early-delinquency episodes with how they ended and when that became known.

    `outcome` is `target.horizon_outcome` of the early-delinquent cuts; `cuts` are all cuts, which
    give the next cut of each episode (rolled past 30 days or not).
    """
    w = ibis.window(group_by=cuts.obligation_id, order_by=cuts.cut_date)
    nxt = cuts.select(
        "obligation_id",
        "cut_date",
        next_cut_date=cuts.cut_date.lead().over(w),
        next_dpd=cuts.days_past_due.lead().over(w),
    )
    o = outcome.select("obligation_id", "cut_date", "horizon_end", "cured_debit", "cured_other")
    j = o.join(nxt, ["obligation_id", "cut_date"]).join(calendar, "cut_date")
    return j.select(
        "obligation_id",
        "period",
        "horizon_end",
        "cured_debit",
        "cured_other",
        "next_cut_date",
        rolled_31=(j.next_dpd > 30).fill_null(False),
    )


def episode_features(spine: ir.Table, episodes: ir.Table) -> ir.Table:
    j = _window_join(spine, episodes, EPISODE_WINDOW, include_current=False)
    seen = j.horizon_end <= j.cut_date
    return j.group_by(["obligation_id", "cut_date"]).aggregate(
        past_early_cuts_12m=j.a_period.count(),
        past_cured_debit_12m=_count_if(seen & (j.cured_debit == 1)).sum().fill_null(0),
        past_cured_other_12m=_count_if(seen & (j.cured_other == 1)).sum().fill_null(0),
        past_rolled_31_12m=_count_if(j.rolled_31 & (j.next_cut_date <= j.cut_date))
        .sum()
        .fill_null(0),
    )


def account_features(covered: ir.Table, account_monthly: ir.Table) -> ir.Table:
    """Deposit-account behaviour over complete months; `covered` has obligation_id, cut_date,
    account_key (of the mandate covering d) and installment_amount."""
    is_month_end = (covered.cut_date + ibis.interval(days=1)).day() == 1
    last_month = month_index(covered.cut_date) - is_month_end.ifelse(0, 1)
    c = covered.select("obligation_id", "cut_date", "account_key", "installment_amount").mutate(
        last_month=last_month
    )
    m = account_monthly.rename(m_account_key="account_key")
    j = c.join(
        m,
        [
            c.account_key == m.m_account_key,
            m.month_index > c.last_month - ACCOUNT_WINDOW,
            m.month_index <= c.last_month,
        ],
        how="left",
    )
    r3 = j.month_index > j.last_month - 3
    prev3 = j.month_index <= j.last_month - 3
    n3 = _count_if(r3 & j.month_index.notnull()).sum()
    out = j.group_by(["obligation_id", "cut_date"]).aggregate(
        installment_amount=j.installment_amount.max(),
        avg_balance_3m=ratio(_sum_if(r3, j.avg_balance), n3),
        avg_balance_6m=j.avg_balance.mean(),
        min_balance_3m=r3.ifelse(j.min_balance, ibis.null()).min(),
        prev3=ratio(
            _sum_if(prev3, j.avg_balance), _count_if(prev3 & j.month_index.notnull()).sum()
        ),
        end_balance_last_month=(j.month_index == j.last_month)
        .ifelse(j.end_balance, ibis.null())
        .max(),
        inflow3=_sum_if(r3, j.inflow_total),
        outflow3=_sum_if(r3, j.outflow_total),
        n3=n3,
        payroll_months=_count_if(j.payroll_inflow > 0).sum(),
        account_months_6m=j.month_index.count(),
    )
    return out.select(
        "obligation_id",
        "cut_date",
        "avg_balance_3m",
        "avg_balance_6m",
        "min_balance_3m",
        balance_trend_3m=out.avg_balance_3m - out.prev3,
        end_balance_last_month=out.end_balance_last_month,
        balance_to_installment=ratio(out.avg_balance_3m, out.installment_amount),
        inflow_to_installment_3m=ratio(ratio(out.inflow3, out.n3), out.installment_amount),
        outflow_to_inflow_3m=ratio(out.outflow3, out.inflow3),
        payroll_regularity_6m=ratio(out.payroll_months, out.account_months_6m),
        account_months_6m=out.account_months_6m,
    )


def age_band(age: ir.IntegerValue) -> ir.StringValue:
    return ibis.cases(
        (age < 25, "<25"),
        (age < 35, "25-34"),
        (age < 45, "35-44"),
        (age < 55, "45-54"),
        (age < 65, "55-64"),
        else_="65+",
    )


# ---- documentation ------------------------------------------------------------------------------
def features_markdown() -> str:
    lines = [
        "# Features of `gold.obligation_snapshots`",
        "",
        "Generated from `cobranza.transforms.features.FEATURES` (`cobranza docs`); do not edit by hand.",
        "",
        "One row per obligation and cut date d with 1-30 days past due. Every feature uses only data",
        'stamped on or before d. "n months" means the last n cut periods (period k holds the days',
        "in (cut k-1, cut k]; with month-end cuts these are calendar months, the current one",
        "included up to d). Account months count only once complete (last day on or before d).",
        "Before the first cut the periods go on back 12 months (month ends, or the first gap",
        "between cuts), so an n-month window at an early cut covers n months of history, no more.",
        "Past episodes count only when their outcome was fully observed by d. The mandate's and the",
        "obligation's `status` describe the extract date only and are never features. There is no",
        "payroll day in the extract: `debit_success_day_12m` (mean day of month of successful",
        'debits) is the visible proxy for when funds arrive. "at extract" marks attributes the',
        "extract gives only as of its date (segment, employment, income, the obligation's terms):",
        "if the bank overwrites them, past rows see today's value; ask for their history to fix it.",
        "",
        'Reason texts are in English, or in Spanish with `reason_language = "es"` (numbers with',
        "Colombian separators, some category codes in words).",
        "",
        "| feature | type | group | window | meaning | reason wording | when null | en español | nulo |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in FEATURES:
        kind = "categorical" if f.categorical else f.dtype
        meaning = f.meaning.replace("|", "/")
        missing = f.missing or f"{f.name}: no data"
        missing_es = f.missing_es or f"{f.name}: no data"
        lines.append(
            f"| `{f.name}` | {kind} | {f.group} | {f.window} | {meaning} | {f.reason} | {missing} "
            f"| {f.reason_es} | {missing_es} |"
        )
    return "\n".join(lines) + "\n"


def write_features_doc(path: Path | str) -> Path:
    """Write docs/features.md from the registry (the lead wires it into `cobranza docs`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(features_markdown(), encoding="utf-8")
    return path
