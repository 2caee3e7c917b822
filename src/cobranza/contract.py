"""The raw extract contract (version 1) as data: the one source the simulator, ingestion and docs read.

Mirrors ../shared/contract/raw-extract.md. Changing the contract means changing that page first,
then this module; `docs/contract.md` is generated from here (`cobranza docs`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

CONTRACT_VERSION = 1

ColumnType = Literal["string", "date", "timestamp", "decimal", "integer"]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = False
    allowed: tuple[str, ...] | None = None
    minimum: float | None = None
    exclusive_minimum: bool = False
    maximum: float | None = None
    references: tuple[str, str] | None = None  # (file stem, column)
    personal: bool = False
    notes: str = ""


@dataclass(frozen=True)
class FileSpec:
    stem: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    personal: bool = False
    notes: str = ""

    @property
    def filename(self) -> str:
        return f"{self.stem}.csv"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.filename} has no column {name!r}")

    @property
    def references(self) -> tuple[tuple[str, str, str], ...]:
        """(column, referenced file stem, referenced column) for each reference."""
        return tuple((c.name, *c.references) for c in self.columns if c.references)


def _c(name: str, type_: ColumnType, required: bool = False, **kw) -> Column:
    return Column(name=name, type=type_, required=required, **kw)


DOCUMENT_TYPES = ("CC", "CE", "NIT", "PA", "TI")
GENDERS = ("F", "M", "X")
SEGMENTS = ("MASS", "AFFLUENT", "PREMIUM", "SME")
EMPLOYMENT_TYPES = ("SALARIED", "INDEPENDENT", "PENSIONER", "OTHER")
PRODUCTS = ("CONSUMER_LOAN", "CREDIT_CARD", "VEHICLE", "MORTGAGE", "MICROCREDIT")
REVOLVING_PRODUCTS = ("CREDIT_CARD",)
OBLIGATION_STATUSES = ("ACTIVE", "CLOSED", "WRITTEN_OFF")
ACCOUNT_TYPES = ("SAVINGS", "CHECKING")
ACCOUNT_BANKS = ("OWN", "OTHER")
MANDATE_STATUSES = ("ACTIVE", "SUSPENDED", "CANCELLED")
DEBIT_MODES = ("FULL", "PARTIAL_ALLOWED")
CHANNELS = (
    "RECURRING_DEBIT",
    "BRANCH",
    "DIGITAL",
    "PSE",
    "CORRESPONDENT",
    "ATM",
    "COLLECTION_AGENCY",
    "PAYROLL",
)
DEBIT_CHANNEL = "RECURRING_DEBIT"
ATTEMPT_RESULTS = ("SUCCESS", "PARTIAL", "REJECTED")
REJECT_REASONS = (
    "INSUFFICIENT_FUNDS",
    "ACCOUNT_BLOCKED",
    "ACCOUNT_CLOSED",
    "MANDATE_INACTIVE",
    "TECHNICAL",
)
ACTION_TYPES = ("CALL", "SMS", "EMAIL", "WHATSAPP", "LETTER", "FIELD_VISIT")
ACTION_OUTCOMES = ("CONTACTED", "PROMISE_TO_PAY", "NO_CONTACT", "WRONG_NUMBER", "REFUSED")

FILES: tuple[FileSpec, ...] = (
    FileSpec(
        "clients",
        (
            _c("client_id", "string", True, notes="internal customer key"),
            _c("document_type", "string", True, allowed=DOCUMENT_TYPES, personal=True),
            _c("document_number", "string", True, personal=True),
            _c("full_name", "string", personal=True),
            _c("birth_date", "date"),
            _c("gender", "string", allowed=GENDERS),
            _c("city", "string"),
            _c("region", "string", notes="department"),
            _c("segment", "string", True, allowed=SEGMENTS),
            _c("employment_type", "string", allowed=EMPLOYMENT_TYPES),
            _c("monthly_income", "decimal", minimum=0, notes="declared"),
            _c("customer_since", "date", True),
            _c("email", "string", personal=True),
            _c("phone", "string", personal=True),
        ),
        key=("client_id",),
        personal=True,
    ),
    FileSpec(
        "obligations",
        (
            _c("obligation_id", "string", True),
            _c("client_id", "string", True, references=("clients", "client_id")),
            _c("product", "string", True, allowed=PRODUCTS),
            _c("origination_date", "date", True),
            _c("maturity_date", "date", notes="empty for revolving products"),
            _c(
                "original_amount",
                "decimal",
                True,
                minimum=0,
                exclusive_minimum=True,
                notes="credit limit for cards",
            ),
            _c("annual_rate", "decimal", True, minimum=0, notes="percent, e.g. 24.5"),
            _c(
                "term_months",
                "integer",
                minimum=0,
                exclusive_minimum=True,
                notes="empty for revolving products",
            ),
            _c(
                "installment_amount",
                "decimal",
                True,
                minimum=0,
                exclusive_minimum=True,
                notes="minimum payment for cards",
            ),
            _c(
                "due_day",
                "integer",
                True,
                minimum=1,
                maximum=31,
                notes="day of month the installment falls due",
            ),
            _c("status", "string", True, allowed=OBLIGATION_STATUSES),
            _c("closed_date", "date"),
        ),
        key=("obligation_id",),
    ),
    FileSpec(
        "debit_mandates",
        (
            _c("mandate_id", "string", True),
            _c("obligation_id", "string", True, references=("obligations", "obligation_id")),
            _c("account_id", "string", True, notes="the deposit account debited"),
            _c("account_type", "string", True, allowed=ACCOUNT_TYPES),
            _c(
                "account_bank",
                "string",
                True,
                allowed=ACCOUNT_BANKS,
                notes="OTHER = another bank, through ACH",
            ),
            _c("start_date", "date", True),
            _c("end_date", "date", notes="the day the mandate stopped; empty while it runs"),
            _c(
                "status",
                "string",
                True,
                allowed=MANDATE_STATUSES,
                notes="as of the extract date only",
            ),
            _c("debit_mode", "string", True, allowed=DEBIT_MODES),
        ),
        key=("mandate_id",),
    ),
    FileSpec(
        "installments",
        (
            _c("obligation_id", "string", True, references=("obligations", "obligation_id")),
            _c("installment_no", "integer", True, minimum=1),
            _c("due_date", "date", True),
            _c("amount_due", "decimal", True, minimum=0),
        ),
        key=("obligation_id", "installment_no"),
    ),
    FileSpec(
        "payments",
        (
            _c("payment_id", "string", True),
            _c("obligation_id", "string", True, references=("obligations", "obligation_id")),
            _c("payment_ts", "timestamp", True),
            _c("amount", "decimal", True, minimum=0, exclusive_minimum=True),
            _c(
                "channel",
                "string",
                True,
                allowed=CHANNELS,
                notes="RECURRING_DEBIT matches a successful or partial attempt",
            ),
        ),
        key=("payment_id",),
    ),
    FileSpec(
        "debit_attempts",
        (
            _c("attempt_id", "string", True),
            _c("mandate_id", "string", True, references=("debit_mandates", "mandate_id")),
            _c("attempt_ts", "timestamp", True),
            _c("amount_requested", "decimal", True, minimum=0, exclusive_minimum=True),
            _c("amount_debited", "decimal", True, minimum=0),
            _c("result", "string", True, allowed=ATTEMPT_RESULTS),
            _c("reject_reason", "string", allowed=REJECT_REASONS, notes="empty on SUCCESS"),
        ),
        key=("attempt_id",),
    ),
    FileSpec(
        "account_monthly",
        (
            _c("account_id", "string", True),
            _c("month", "date", True, notes="first day of the month"),
            _c("avg_balance", "decimal", True, notes="may be negative (overdraft)"),
            _c("min_balance", "decimal", True),
            _c("end_balance", "decimal", True),
            _c("inflow_total", "decimal", True, minimum=0),
            _c("payroll_inflow", "decimal", True, minimum=0, notes="part of inflow_total"),
            _c("n_inflows", "integer", True, minimum=0),
            _c("outflow_total", "decimal", True, minimum=0),
        ),
        key=("account_id", "month"),
    ),
    FileSpec(
        "portfolio_cuts",
        (
            _c("cut_date", "date", True, notes="monthly (month end) by default"),
            _c("obligation_id", "string", True, references=("obligations", "obligation_id")),
            _c("days_past_due", "integer", True, minimum=0),
            _c("amount_past_due", "decimal", True, minimum=0),
            _c("outstanding_balance", "decimal", True, minimum=0),
        ),
        key=("cut_date", "obligation_id"),
    ),
    FileSpec(
        "collection_actions",
        (
            _c("action_id", "string", True),
            _c("obligation_id", "string", True, references=("obligations", "obligation_id")),
            _c("action_ts", "timestamp", True),
            _c("action_type", "string", True, allowed=ACTION_TYPES),
            _c("outcome", "string", True, allowed=ACTION_OUTCOMES),
            _c("cost", "decimal", True, minimum=0, notes="pesos"),
        ),
        key=("action_id",),
    ),
)

FILES_BY_STEM: dict[str, FileSpec] = {f.stem: f for f in FILES}
PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    f.stem: tuple(c.name for c in f.columns if c.personal) for f in FILES
}
MANIFEST = "manifest.json"
TRUTH_DIR = "_truth"
TRUTH_FILE = "p_true.csv"  # cut_date, obligation_id, p_true; outside the extract proper

# Early delinquency: the scoring unit.
EARLY_DPD_MIN = 1
EARLY_DPD_MAX = 30


@dataclass(frozen=True)
class Dialect:
    """How an extract is spelled on disk. Configurable per extract, never guessed."""

    name: str = "standard"
    delimiter: str = ","
    encoding: str = "utf-8"
    decimal: str = "."
    date_format: str = "%Y-%m-%d"
    timestamp_format: str = "%Y-%m-%d %H:%M:%S"
    quote: str = '"'
    extra: dict = field(default_factory=dict, compare=False, hash=False)


STANDARD = Dialect()
BANK_LATIN1 = Dialect(
    name="bank-latin1",
    delimiter=";",
    encoding="latin-1",
    decimal=",",
    date_format="%d/%m/%Y",
    timestamp_format="%d/%m/%Y %H:%M:%S",
)
DIALECTS: dict[str, Dialect] = {STANDARD.name: STANDARD, BANK_LATIN1.name: BANK_LATIN1}


def load_dialect(spec: str) -> Dialect:
    """A dialect by name (`standard`, `bank-latin1`) or from a TOML file with the same fields."""
    if spec in DIALECTS:
        return DIALECTS[spec]
    path = Path(spec)
    if path.suffix == ".toml" and path.exists():
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        data = data.get("dialect", data)
        allowed = set(Dialect.__dataclass_fields__) - {"extra"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(
                f"{path}: unknown dialect fields {sorted(unknown)}; allowed {sorted(allowed)}"
            )
        return Dialect(**{"name": path.stem, **data})
    raise ValueError(f"unknown dialect {spec!r}: use one of {sorted(DIALECTS)} or a .toml file")
