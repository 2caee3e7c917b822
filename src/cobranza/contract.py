"""The raw extract contract (version 2, version 1 still accepted) as data: the one source the
simulator, ingestion and docs read.

Mirrors ../shared/contract/raw-extract.md. Changing the contract means changing that page first,
then this module; `docs/contract.md` is generated from here (`cobranza docs`). `FILES` is the
current version; `files_for(version)` gives the files and columns an older version carries (each
file and column says in `since` which version added it).
"""

from __future__ import annotations

import codecs
import difflib
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

from cobranza.errors import CobranzaError

CONTRACT_VERSION = 2
CONTRACT_VERSIONS = (1, 2)
GZIP_SUFFIX = ".gz"  # version 2: any file may be delivered as NAME.csv.gz

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
    since: int = 1  # the contract version that added the column
    pattern: str | None = None  # a regular expression the whole value must match (ids)


@dataclass(frozen=True)
class FileSpec:
    stem: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    personal: bool = False
    notes: str = ""
    since: int = 1  # the contract version that added the file
    # Files validated first because a cross-file rule of this one reads their accepted rows
    # (beyond the parents its references already name).
    after: tuple[str, ...] = ()
    # The name the file was delivered under (NAME.csv or NAME.csv.gz), set by the ingestion so
    # that every message names the file the bank sent; empty for the contract's own spec.
    delivered: str = ""

    @property
    def filename(self) -> str:
        return self.delivered or f"{self.stem}.csv"

    @property
    def csv_name(self) -> str:
        """The contract's name of the file, uncompressed."""
        return f"{self.stem}.csv"

    @property
    def gzip_name(self) -> str:
        """The name of the file delivered gzip-compressed (version 2 allows it for any file)."""
        return f"{self.stem}.csv{GZIP_SUFFIX}"

    @property
    def compressed(self) -> bool:
        return self.filename.endswith(GZIP_SUFFIX)

    @property
    def parents(self) -> set[str]:
        """Files whose accepted rows this one's references and cross-file rules read."""
        return {p for _, p, _ in self.references} | set(self.after)

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


# Identifiers (every `*_id` text column): letters, digits and `-_.`, starting with a letter or
# digit, at most 64 characters. Bank ids fit (C000123, 0012-4471-88, PAY.2025.001); a value a
# spreadsheet would run as a formula (`=1+2`, `+57...`, `-1`, `@SUM`), a space, a quote or a
# control character does not, and the row is quarantined naming the file, line and column.
ID_PATTERN = "[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
ID_PATTERN_TEXT = "letters, digits and - _ . starting with a letter or digit, at most 64"


def _c(name: str, type_: ColumnType, required: bool = False, **kw) -> Column:
    if type_ == "string" and name.endswith("_id"):
        kw.setdefault("pattern", ID_PATTERN)
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
# Version 2: the arm of the bank's assignment decision for an early-delinquent obligation at a cut.
ARMS = ("ASSIGNED", "HOLDOUT", "RULE")
ASSIGNED_ARM, HOLDOUT_ARM, RULE_ARM = ARMS
ACTION_TYPES = ("CALL", "SMS", "EMAIL", "WHATSAPP", "LETTER", "FIELD_VISIT")
ACTION_OUTCOMES = ("CONTACTED", "PROMISE_TO_PAY", "NO_CONTACT", "WRONG_NUMBER", "REFUSED")

# Version 2 additions (../shared/contract/raw-extract.md, "Version 2 additions").
REVERSED_TS = _c(
    "reversed_ts",
    "timestamp",
    notes="when the payment was returned (a debit return or a reversal); empty if never",
    since=2,
)
COLLECTION_ASSIGNMENTS = FileSpec(
    "collection_assignments",
    (
        _c("obligation_id", "string", True, references=("obligations", "obligation_id")),
        _c("cut_date", "date", True, notes="a month-end cut; (obligation_id, cut_date) is unique"),
        _c(
            "arm",
            "string",
            True,
            allowed=ARMS,
            notes="ASSIGNED: sent to collection management; HOLDOUT: left unmanaged at random, "
            "as a control group; RULE: not assigned by a business rule of the bank",
        ),
        _c(
            "policy_id",
            "string",
            True,
            notes="the policy or experiment that decided, e.g. bau-2025, holdout-2026h1",
        ),
    ),
    key=("obligation_id", "cut_date"),
    notes="must match an early-delinquency row of portfolio_cuts.csv at the same cut",
    since=2,
    after=("portfolio_cuts",),
)

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
            REVERSED_TS,
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
    COLLECTION_ASSIGNMENTS,
)

FILES_BY_STEM: dict[str, FileSpec] = {f.stem: f for f in FILES}
ASSIGNMENTS = COLLECTION_ASSIGNMENTS.stem


def files_for(version: int) -> tuple[FileSpec, ...]:
    """The files of a contract version, each with the columns that version carries, in order."""
    if version not in CONTRACT_VERSIONS:
        raise ValueError(f"unknown contract version {version!r}")
    return tuple(
        replace(f, columns=tuple(c for c in f.columns if c.since <= version))
        for f in FILES
        if f.since <= version
    )


PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    f.stem: tuple(c.name for c in f.columns if c.personal) for f in FILES
}
MANIFEST = "manifest.json"
TRUTH_DIR = "_truth"
TRUTH_FILE = "p_true.csv"  # cut_date, obligation_id, p_true; outside the extract proper
# Version 2 ground truth: both potential outcomes of every early-delinquency row.
POTENTIAL_OUTCOMES_FILE = "potential_outcomes.parquet"
POTENTIAL_OUTCOME_COLUMNS = (
    "obligation_id",
    "cut_date",
    "arm",
    "p_cure_debit_no_action",
    "p_cure_debit_action",
    "p_cure_any_no_action",
    "p_cure_any_action",
    "p_roll_no_action",
    "p_roll_action",
    "exposure",
)

# Early delinquency: the scoring unit.
EARLY_DPD_MIN = 1
EARLY_DPD_MAX = 30

# Dates and timestamps carry a four-digit year in this range. DuckDB's `%Y` also reads one to
# three digits, so `26-05-01` would be the year 26: the range is what refuses two-digit years.
YEAR_MIN = 1900
YEAR_MAX = 2100
# Integers are plain digits with an optional leading '-', at most this many (exact as a double
# downstream); decimals are digits with an optional '-' and one decimal separator of the dialect.
MAX_INTEGER_DIGITS = 15


class DialectError(CobranzaError):
    """A dialect that cannot be used: unknown name, unreadable .toml, or a field out of shape."""


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

DIALECT_FIELDS = tuple(f.name for f in fields(Dialect) if f.name != "extra")
DECIMAL_SEPARATORS = (".", ",")
# strftime directives a date or timestamp format may use: each one exactly once, `%Y` (four-digit
# year) always, so the ingestion's parse and the simulator's spelling agree on every value.
DATE_DIRECTIVES = ("%Y", "%m", "%d")
TIMESTAMP_DIRECTIVES = ("%Y", "%m", "%d", "%H", "%M", "%S")
_DIRECTIVE = re.compile(r"%.?", re.DOTALL)
_ASCII_PROBE = "az09,;|\t\n\r\"'.-:/ %"


def check_dialect(dialect: Dialect) -> Dialect:
    """The dialect itself, or a `DialectError` naming the first field that cannot work.

    A bad field would otherwise surface deep in the parser as an internal error (or, for a
    two-digit year, not at all): here it gets one message saying what is allowed.
    """
    label = f"dialect {dialect.name!r}" if isinstance(dialect.name, str) else "dialect"
    for name in DIALECT_FIELDS:
        value = getattr(dialect, name)
        if not isinstance(value, str):
            raise DialectError(f"{label}: {name} must be a string (got {type(value).__name__})")
    if not dialect.name.strip():
        raise DialectError("dialect: name must not be empty")
    _check_encoding(label, dialect.encoding)
    d, q, sep = dialect.delimiter, dialect.quote, dialect.decimal
    if len(d) != 1 or not _separator_char(d):
        raise DialectError(
            f"{label}: delimiter must be one ASCII character, not a letter, digit or line "
            f"break (got {d!r})"
        )
    if len(q) > 1 or (q and not _separator_char(q)):
        raise DialectError(
            f"{label}: quote must be one ASCII character, not a letter, digit or line break, "
            f"or empty for no quoting (got {q!r})"
        )
    if q == d:
        raise DialectError(f"{label}: quote and delimiter must differ (both {d!r})")
    if sep not in DECIMAL_SEPARATORS:
        raise DialectError(
            f"{label}: decimal must be one of {', '.join(repr(s) for s in DECIMAL_SEPARATORS)} "
            f"(got {sep!r})"
        )
    if sep == d:
        raise DialectError(f"{label}: decimal and delimiter must differ (both {d!r})")
    _check_format(label, "date_format", dialect.date_format, DATE_DIRECTIVES, DATE_DIRECTIVES, d)
    _check_format(
        label,
        "timestamp_format",
        dialect.timestamp_format,
        TIMESTAMP_DIRECTIVES,
        ("%Y", "%m", "%d", "%H", "%M"),
        d,
    )
    return dialect


def _separator_char(c: str) -> bool:
    """An ASCII punctuation, space or tab: the parser splits bytes, and a letter is data."""
    return c.isascii() and not c.isalnum() and c not in "\r\n" and (c.isprintable() or c == "\t")


def _check_encoding(label: str, encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DialectError(f"{label}: unknown encoding {encoding!r}") from None
    # The reader splits lines and fields on ASCII bytes; UTF-16 or EBCDIC would be misread.
    try:
        compatible = _ASCII_PROBE.encode("ascii").decode(encoding) == _ASCII_PROBE
    except (UnicodeDecodeError, ValueError):
        compatible = False
    if not compatible:
        raise DialectError(
            f"{label}: encoding {encoding!r} does not spell ASCII as ASCII (UTF-16, EBCDIC...); "
            "use utf-8, latin-1 or another ASCII-compatible encoding"
        )


def _check_format(
    label: str,
    name: str,
    fmt: str,
    allowed: tuple[str, ...],
    required: tuple[str, ...],
    delimiter: str,
) -> None:
    used = _DIRECTIVE.findall(fmt)
    for directive in used:
        if directive == "%y":
            raise DialectError(
                f"{label}: {name} {fmt!r} uses %y (two-digit year); use %Y (four digits)"
            )
        if directive not in allowed:
            raise DialectError(
                f"{label}: {name} {fmt!r} has the directive {directive!r}; allowed: "
                f"{' '.join(allowed)}"
            )
    for directive in allowed:
        if used.count(directive) > 1:
            raise DialectError(f"{label}: {name} {fmt!r} has {directive} twice")
    missing = [x for x in required if x not in used]
    if missing:
        raise DialectError(f"{label}: {name} {fmt!r} lacks {' '.join(missing)}")
    if delimiter in fmt:
        raise DialectError(f"{label}: {name} {fmt!r} contains the delimiter {delimiter!r}")
    sample = datetime(2024, 11, 30, 13, 45, 59)
    expected = sample if "%H" in used else sample.replace(hour=0, minute=0, second=0)
    if "%S" not in used:
        expected = expected.replace(second=0)
    try:
        ok = datetime.strptime(sample.strftime(fmt), fmt) == expected
    except ValueError:
        ok = False
    if not ok:
        raise DialectError(f"{label}: {name} {fmt!r} does not read back what it writes")


def load_dialect(spec: str) -> Dialect:
    """A dialect by name (`standard`, `bank-latin1`) or from a TOML file with the same fields.

    Every problem is a `DialectError`, so the CLI prints one line instead of a traceback.
    """
    if spec in DIALECTS:
        return DIALECTS[spec]
    path = Path(spec)
    if path.suffix.lower() != ".toml":
        if path.exists():
            raise DialectError(f"{spec}: a dialect file must be a .toml file")
        close = difflib.get_close_matches(spec, list(DIALECTS), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DialectError(
            f"unknown dialect {spec!r}{hint}: use one of {', '.join(DIALECTS)} or a .toml file"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DialectError(f"{path}: dialect file not found") from None
    except UnicodeDecodeError:
        raise DialectError(f"{path}: the dialect file is not valid UTF-8") from None
    except OSError as exc:
        raise DialectError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DialectError(f"{path}: not valid TOML ({exc})") from None
    if "dialect" in data:
        others = sorted(set(data) - {"dialect"})
        if others:
            raise DialectError(f"{path}: keys {others} outside the [dialect] table")
        data = data["dialect"]
        if not isinstance(data, dict):
            raise DialectError(f"{path}: 'dialect' must be a table ([dialect])")
    unknown = set(data) - set(DIALECT_FIELDS)
    if unknown:
        raise DialectError(
            f"{path}: unknown dialect fields {sorted(unknown)}; allowed {sorted(DIALECT_FIELDS)}"
        )
    return check_dialect(Dialect(**{"name": path.stem, **data}))
