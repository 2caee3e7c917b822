"""MLflow's tracking store and model registry on a PostgreSQL server: `cobranza train` records its run,
registers the version and moves the champion alias there, `cobranza models` and `cobranza score`
read them back, and every artifact stays in the lake (the database holds metadata only).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cobranza.config import load_settings
from tests.scale.conftest import cobranza, lake_copy, ok_json

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def pg_lake(built_lake, pg_server, tmp_path_factory) -> dict:
    """A copy of the built lake trained and scored with the store on PostgreSQL."""
    lake = lake_copy(built_lake, tmp_path_factory.mktemp("pg") / "lake")
    env = {
        "COBRANZA_MLFLOW_TRACKING_URI": pg_server.url,
        "PGPASSWORD": pg_server.password,  # libpq's; the URI carries no password
        # on the small extract out-of-time ECE and PSI are mostly sampling noise; the gate is not
        # on trial here, the store is
        "COBRANZA_GATE__MAX_ECE": "0.3",
        "COBRANZA_GATE__MAX_PSI": "1.0",
    }
    train = ok_json(cobranza(lake, "train", env=env))
    models = ok_json(cobranza(lake, "models", env=env))
    score = ok_json(cobranza(lake, "score", env=env))
    return {"lake": lake, "env": env, "train": train, "models": models, "score": score}


def query(server, sql: str, *params) -> list[tuple]:
    import psycopg

    with psycopg.connect(server.conninfo) as con:
        return con.execute(sql, params).fetchall()


def test_training_registers_the_champion_in_postgres(pg_server, pg_lake):
    train = pg_lake["train"]
    assert train["alias"] == "champion" and train["training_status"] == "succeeded"
    runs = query(pg_server, "SELECT run_uuid, status FROM runs")
    assert (train["run_id"], "FINISHED") in runs
    aliases = query(
        pg_server,
        "SELECT alias, version FROM registered_model_aliases WHERE name = %s",
        "cobranza-self-cure",
    )
    assert aliases == [("champion", int(train["version"]))]
    tags = dict(
        query(
            pg_server,
            "SELECT key, value FROM model_version_tags WHERE name = %s AND version = %s",
            "cobranza-self-cure",
            int(train["version"]),
        )
    )
    assert tags["gold_version"] == train["gold_version"]
    assert tags["training_status"] == "succeeded"
    listed = [m for m in pg_lake["models"]["models"] if m["version"] == train["version"]]
    assert listed and listed[0]["aliases"] == ["champion"]


def test_scoring_uses_the_champion_from_postgres(pg_lake):
    score = pg_lake["score"]
    assert score["model_version"] == pg_lake["train"]["version"]
    assert score["obligations"] > 0 and score["eligible"] > 0
    assert score["assign"] + score["no_assign"] == score["obligations"]


def test_artifacts_stay_in_the_lake_and_no_sqlite_store_is_made(pg_server, pg_lake):
    lake: Path = pg_lake["lake"]
    assert not (lake / "ml_metadata" / "mlflow.db").exists()
    artifacts = (lake / "ml_metadata" / "artifacts").resolve()
    (uri,) = query(
        pg_server, "SELECT artifact_uri FROM runs WHERE run_uuid = %s", pg_lake["train"]["run_id"]
    )[0]
    assert uri.startswith(artifacts.as_uri()), uri
    (location,) = query(
        pg_server,
        "SELECT storage_location FROM model_versions WHERE name = %s AND version = %s",
        "cobranza-self-cure",
        int(pg_lake["train"]["version"]),
    )[0]
    assert location.startswith(artifacts.as_uri()), location
    assert list(artifacts.rglob("MLmodel")), "the model's files are not in the lake"
    assert list(artifacts.rglob("policy.json"))


def test_no_password_reaches_mlflow(pg_server, pg_lake):
    values = [v for (v,) in query(pg_server, "SELECT value FROM params")]
    assert values and not [v for v in values if pg_server.password in v]
    uri = f"postgresql+psycopg://cobranza:{pg_server.password}@127.0.0.1:5432/mlflow"
    logged = load_settings(mlflow_tracking_uri=uri).public_dict()["mlflow_tracking_uri"]
    assert logged == "postgresql+psycopg://cobranza:***@127.0.0.1:5432/mlflow"
