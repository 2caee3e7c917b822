"""Settings: the one place each knob is defined, read from `cobranza.toml` and `COBRANZA_*` variables.

Precedence (highest first): explicit overrides passed by the CLI (`--lake` ...), environment
variables (`COBRANZA_LAKE`, nested with `__`: `COBRANZA_COSTS__COLLECTION_ACTION`), the TOML file
(`cobranza.toml` in the working directory, or the path in `COBRANZA_CONFIG`), then the defaults here.
"""

from __future__ import annotations

import os
import tomllib
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings import SettingsError as SourceError

from cobranza.errors import CobranzaError

ENV_PREFIX = "COBRANZA_"


class Costs(BaseModel):
    """Costs of the assignment decision, in pesos (COP)."""

    collection_action: float = Field(
        8_000.0,
        ge=0,
        description="Cost of one collection management (calls, SMS, visits) of one obligation.",
    )
    daily_capacity: int | None = Field(
        None,
        ge=0,
        description="Optional number of obligations the collection team can manage per cut.",
    )
    # The loss of a roll to 31+ days past due (`decision.loss`): IFRS 9's 30-days backstop moves the
    # obligation to stage 2, whose lifetime provision exceeds stage 1's 12-month one by a share of the
    # outstanding balance (the step), and the later collection stage costs more than early calls.
    # Defaults are illustrative orders of magnitude; set them from the bank's provisioning model.
    provision_step: dict[str, float] = Field(
        default_factory=lambda: {
            "CONSUMER_LOAN": 0.04,
            "CREDIT_CARD": 0.05,
            "VEHICLE": 0.03,
            "MORTGAGE": 0.01,
            "MICROCREDIT": 0.06,
        },
        description="Provision step from stage 1 to stage 2, as a share of the outstanding balance, "
        "by product: what a roll to 31+ days past due costs in provisions.",
    )
    default_provision_step: float = Field(
        0.04,
        ge=0,
        le=1,
        description="Provision step of a product not listed in `provision_step`.",
    )
    later_collection_cost: float = Field(
        30_000.0,
        ge=0,
        description="Collection cost of an obligation that rolls to 31+ days past due (the later, "
        "costlier stage of collections), on top of the provision step.",
    )

    @field_validator("provision_step")
    @classmethod
    def _steps_are_shares(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not 0.0 <= float(v) <= 1.0}
        if bad:
            raise ValueError(f"provision steps must be shares between 0 and 1, got {bad}")
        return {str(k): float(v) for k, v in value.items()}


class Gate(BaseModel):
    """Promotion gate for the `champion` alias."""

    # The challenger and the champion are compared on the challenger's out-of-time rows
    # (`ml/gate.py`): a real gain (an interval above 0) or non-inferiority within these margins.
    auc_margin: float = Field(
        0.005,
        ge=0,
        description="AUC non-inferiority margin: on the same out-of-time rows, the lower bound of "
        "the 95% interval of AUC(challenger) - AUC(champion) must be at least -auc_margin.",
    )
    # Measured on `make run` data (5,699 out-of-time rows, all randomized, 10% held out): two
    # policies differing on 250-600 decisions give saving intervals about ±5,000-9,000 COP wide
    # (mean realized cost 281,000 COP per obligation), so a tighter margin refuses any challenger
    # whose decisions differ at all. Set it from the bank's risk appetite; a larger holdout
    # narrows the intervals.
    value_margin: float = Field(
        10_000.0,
        ge=0,
        description="Net value non-inferiority margin, pesos per obligation: on the randomized "
        "rows among them, the lower bound of the 95% interval of what the challenger's decisions "
        "save against the champion's must be at least -value_margin.",
    )
    resamples: int = Field(
        2000, ge=100, description="Bootstrap resamples of the gate's intervals (seeded)."
    )
    max_ece: float = Field(
        0.03, ge=0, description="Maximum expected calibration error on out-of-time data."
    )
    max_psi: float = Field(0.25, ge=0, description="Maximum score PSI from train to out-of-time.")


class Experiment(BaseModel):
    """The randomized holdout of every scoring run and the sizing defaults of its report
    (`decision/experiment.py`, `docs/experiments.md`)."""

    holdout_share: float = Field(
        0.05,
        ge=0,
        lt=1,
        description="Share of the eligible obligations of each scored cut set aside as a control "
        "group: decided NO_ASSIGN, never contacted, never counted in the capacity.",
    )
    challenger_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Share of the eligible obligations outside the holdout decided by the "
        "challenger model (the version holding the registry's `challenger` alias) instead of the "
        "champion; no row is routed while no challenger is registered.",
    )
    # Not a secret (anyone holding it can recompute the arms, which is the point: the draw is
    # auditable), but it must stay stable: changing it redraws every future control group. The
    # default is the simulator's, so that a simulated bank and cobranza draw the same group.
    salt: str = Field(
        "cobranza-holdout",
        min_length=1,
        description="Salt of the arm hash sha256(salt|obligation_id|cut_date); keep it stable.",
    )
    mde: float = Field(
        0.02,
        gt=0,
        lt=1,
        description="Default minimum detectable effect on the roll rate (absolute difference of "
        "rates) for the report's sample size.",
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="Two-sided significance level.")
    power: float = Field(0.8, gt=0, lt=1, description="Power of the sample-size calculation.")


class SparkConf(BaseModel):
    """Spark properties by their own names (`"spark.executor.memory" = "4g"`); numbers and
    booleans are passed as Spark spells them (`64`, `true`)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str | bool | int | float] = Field(init=False)

    def properties(self) -> dict[str, str]:
        return {
            k: str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in (self.__pydantic_extra__ or {}).items()
        }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COBRANZA_",
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
    )

    lake: Path = Field(
        Path("./lake"), description="Root folder of the lake (zones, catalog, MLflow store)."
    )
    engine: Literal["duckdb", "spark"] = Field(
        "duckdb", description="Engine the Ibis transforms and scoring run on."
    )
    spark_master: str = Field("local[*]", description="Spark master URL when engine is spark.")
    spark_driver_memory: str = Field(
        "4g", description="Spark driver memory (local mode runs in the driver)."
    )
    spark_conf: SparkConf = Field(
        default_factory=SparkConf,
        description="Extra Spark properties for the ETL's session, applied last (they override "
        "cobranza's own): executor memory and cores, shuffle partitions... on a cluster "
        '(`COBRANZA_SPARK_CONF=\'{"spark.executor.memory": "4g"}\'` or `[spark_conf]` in '
        "cobranza.toml).",
    )
    duckdb_memory_limit: str = Field(
        "4GB",
        description="Memory budget of ingest and transforms: DuckDB's limit (it spills to disk "
        "past it), less 1 GiB per file validated at once during ingest.",
    )
    duckdb_threads: int | None = Field(None, description="DuckDB threads; default all cores.")
    gold_part_rows: int | None = Field(
        None,
        ge=1,
        description="Most gold rows assembled by one statement (gold is written in consecutive "
        "cut ranges of at most this many rows, a cut never split); default: DuckDB's memory "
        "limit over 8 KiB, one statement on Spark.",
    )
    ingest_staging: Literal["auto", "memory", "disk"] = Field(
        "auto",
        description="Where ingest stages a file's text: in memory (spilling uncompressed past "
        "the budget, about 1.7x the CSV on disk), or in a compressed database file in the "
        "lake's temp folder (about 0.6x, for more staging CPU; one file at a time); auto picks "
        "disk when the spill and the raw zone would take more than half the free disk.",
    )
    ingest_workers: int | None = Field(
        None, ge=1, description="Extract files validated at once; default one per core (max 4)."
    )
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default a SQLite store inside the lake."
    )
    model_name: str = Field("cobranza-self-cure", description="Registered model name in MLflow.")
    horizon_days: int = Field(
        30, ge=1, le=120, description="Target horizon H in days after the cut date."
    )
    oot_months: int = Field(
        3, ge=1, description="Latest labeled cut months held out as out-of-time."
    )
    test_share: float = Field(
        0.25, gt=0, lt=1, description="Share of clients (pre-OOT) in the test split."
    )
    seed: int = Field(42, description="Seed for splits, models and tuning.")
    train_sample_clients: int | None = Field(
        None,
        ge=1,
        description="Train on the labeled eligible rows of at most this many clients, chosen by "
        "a hash of the client pseudonym and the seed (the same clients every run), split into "
        "parts exactly as the whole book would be; default every client. Bounds training's "
        "memory on a large book.",
    )
    pseudonym_key: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 key of the client and account pseudonyms (`client_key`, "
        "`account_key`), at least 32 characters. Unset: a random key generated on first use into "
        "`<lake>/control/pseudonym.key` (owner-only) and read from there. Never logged. Changing "
        "it re-keys every pseudonym (docs/security.md, key rotation).",
    )
    pseudonym_development: bool = Field(
        False,
        description="Accept a known development key (e.g. `cobranza-development-secret`) or a "
        "short one as `pseudonym_key`: `etl` and `serve` refuse them otherwise. Demos only.",
    )
    reason_language: Literal["en", "es"] = Field(
        "es",
        description="Language of the reason texts written by scoring and online predict: es (the "
        "collections team's Spanish, with Colombian number separators) or en.",
    )
    costs: Costs = Field(default_factory=Costs)
    gate: Gate = Field(default_factory=Gate)
    experiment: Experiment = Field(default_factory=Experiment)
    truth_path: Path | None = Field(
        None,
        description="Simulator ground truth (cut_date, obligation_id, p_true) for oracle figures; "
        "default `<extract>/_truth/p_true.csv` of the ingested extract when present. Never a model input.",
    )
    api_max_body_bytes: int = Field(1_000_000, description="Maximum request body size of the API.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = config_file()
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.lake.resolve() / 'ml_metadata' / 'mlflow.db').as_posix()}"

    def public_dict(self) -> dict[str, Any]:
        """Configuration safe to log: secrets are masked by pydantic's SecretStr."""
        data = self.model_dump(mode="json")
        data["pseudonym_key"] = "**********"  # set or generated in the lake: never shown
        if data.get("mlflow_tracking_uri"):
            data["mlflow_tracking_uri"] = masked_uri(data["mlflow_tracking_uri"])
        return data


def masked_uri(uri: str) -> str:
    """A database URI with its password masked (`postgresql+psycopg://user:***@host/db`).

    Prefer no password in the URI at all: libpq reads PGPASSWORD or PGPASSFILE.
    """
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def config_file() -> Path:
    """The TOML file read: `COBRANZA_CONFIG`, else `cobranza.toml` in the working directory."""
    return Path(os.environ.get("COBRANZA_CONFIG", "cobranza.toml"))


class SettingsError(CobranzaError):
    """A setting that cannot be used; the message names where it came from (option, variable,
    file and key) and never quotes a secret."""


def load_settings(origins: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings with CLI overrides applied; `None` overrides are ignored.

    A bad value becomes one `SettingsError` naming its source: `origins` maps an override to how
    the caller's user gave it (`{"engine": "--engine"}`), else the `COBRANZA_*` variable or the
    TOML file's key is named.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    path = config_file()
    if "COBRANZA_CONFIG" in os.environ and not path.is_file():
        raise SettingsError(f"COBRANZA_CONFIG: {path} is not a file")
    try:
        return Settings(**given)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc})") from None
    except SourceError as exc:  # a variable holding JSON that is not (COBRANZA_SPARK_CONF...)
        field = str(exc).split('"')[1] if str(exc).count('"') >= 2 else ""
        raise SettingsError(
            f"{ENV_PREFIX}{field.upper()}: not valid JSON for the setting {field}"
        ) from None
    except ValidationError as exc:
        raise SettingsError(_describe(exc, given, origins or {}, path)) from None


def _describe(
    exc: ValidationError, given: dict[str, Any], origins: Mapping[str, str], path: Path
) -> str:
    """The first invalid setting in one line: where it came from, its value, what is expected."""
    err = exc.errors(include_url=False)[0]
    loc = [str(part) for part in err["loc"]]
    key = ".".join(loc)
    secret = any("secret" in part for part in loc)
    value = "" if secret else f" = {str(err.get('input'))[:80]!r}"
    if loc and loc[0] in given:
        source = origins.get(loc[0], f"the setting {key}")
    else:
        source = _env_source(loc) or f"{path} ({key})"
    return f"{source}{value}: {err['msg']} (setting {key})"


def _env_source(loc: list[str]) -> str | None:
    """The `COBRANZA_*` variable that set this field (or its parent, given as JSON), if any."""
    present = {name.upper() for name in os.environ}
    for depth in range(len(loc), 0, -1):
        name = ENV_PREFIX + "__".join(loc[:depth]).upper()
        if name in present:
            return name
    return None
