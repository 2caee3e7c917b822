"""Settings: the one place each knob is defined, read from `cobranza.toml` and `COBRANZA_*` variables.

Precedence (highest first): explicit overrides passed by the CLI (`--lake` ...), environment
variables (`COBRANZA_LAKE`, nested with `__`: `COBRANZA_COSTS__COLLECTION_ACTION`), the TOML file
(`cobranza.toml` in the working directory, or the path in `COBRANZA_CONFIG`), then the defaults here.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Costs(BaseModel):
    """Costs of the assignment decision, in pesos (COP)."""

    collection_action: float = Field(
        8_000.0,
        ge=0,
        description="Cost of one collection management (calls, SMS, visits) of one obligation.",
    )
    # Defaults: a month of calls and SMS for one obligation costs about COP 8,000; an obligation left
    # unmanaged that does not self-cure reaches the next stage later and costlier (fixed part) and
    # rolls more often (share of the amount past due). Break-even probability 1 - 8000/(10000+1%·A):
    # about 0.52 at the median past-due amount of the simulated portfolio.
    unmanaged_fixed: float = Field(
        10_000.0,
        ge=0,
        description="Fixed cost of leaving unmanaged an obligation that then does not self-cure.",
    )
    unmanaged_share_past_due: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Share of the amount past due lost when an unmanaged obligation does not self-cure.",
    )
    daily_capacity: int | None = Field(
        None,
        ge=0,
        description="Optional number of obligations the collection team can manage per cut.",
    )
    min_probability: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Lowest threshold the policy may choose: NO_ASSIGN means 'expected to "
        "self-cure through the debit' (the contract), so never below 0.5 (more likely than not) "
        "by default, whatever the costs say.",
    )
    cost_rule: bool = Field(
        True,
        description="NO_ASSIGN also needs the expected loss if unmanaged, (1 - p) x loss, below "
        "one collection action: a large amount past due is managed even when it will likely "
        "self-cure. Applies to models trained with it (the policy is logged with the model).",
    )


class Gate(BaseModel):
    """Promotion gate for the `champion` alias."""

    auc_tolerance: float = Field(
        0.005, ge=0, description="OOT AUC may drop this much below the champion's."
    )
    max_ece: float = Field(
        0.03, ge=0, description="Maximum expected calibration error on out-of-time data."
    )
    max_psi: float = Field(0.25, ge=0, description="Maximum score PSI from train to out-of-time.")


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
        "duckdb", description="Engine the Ibis transforms run on."
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
    pseudonym_secret: SecretStr = Field(
        SecretStr("cobranza-development-secret"),
        description="Key of the client pseudonym (HMAC); set a real secret in production. Never logged.",
    )
    reason_language: Literal["en", "es"] = Field(
        "es",
        description="Language of the reason texts written by scoring and online predict: es (the "
        "collections team's Spanish, with Colombian number separators) or en.",
    )
    costs: Costs = Field(default_factory=Costs)
    gate: Gate = Field(default_factory=Gate)
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
        toml_path = Path(os.environ.get("COBRANZA_CONFIG", "cobranza.toml"))
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
        data["pseudonym_secret"] = "**********"
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


def load_settings(**overrides: Any) -> Settings:
    """Settings with CLI overrides applied; `None` overrides are ignored."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
