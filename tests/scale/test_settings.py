"""The settings a scale-out deployment uses: Spark properties for a cluster, a database URI for
MLflow whose password never reaches a log or the run's logged configuration."""

from __future__ import annotations

import json

from cobranza.config import load_settings, masked_uri


def test_spark_conf_from_toml_and_environment(tmp_path, monkeypatch):
    toml = tmp_path / "cobranza.toml"
    toml.write_text(
        '[spark_conf]\n"spark.executor.memory" = "4g"\n"spark.sql.shuffle.partitions" = 64\n'
        '"spark.dynamicAllocation.enabled" = false\n'
    )
    monkeypatch.setenv("COBRANZA_CONFIG", str(toml))
    assert load_settings().spark_conf.properties() == {
        "spark.executor.memory": "4g",
        "spark.sql.shuffle.partitions": "64",
        "spark.dynamicAllocation.enabled": "false",
    }
    # the environment adds and overrides properties one by one, as for the other nested settings
    monkeypatch.setenv(
        "COBRANZA_SPARK_CONF",
        json.dumps({"spark.executor.cores": "2", "spark.executor.memory": "6g"}),
    )
    assert load_settings().spark_conf.properties() == {
        "spark.executor.memory": "6g",
        "spark.sql.shuffle.partitions": "64",
        "spark.dynamicAllocation.enabled": "false",
        "spark.executor.cores": "2",
    }


def test_spark_conf_survives_the_json_round_trip_of_a_job_environment(monkeypatch):
    """API jobs pass the service's settings to their worker as COBRANZA_* JSON."""
    settings = load_settings(spark_conf={"spark.executor.memory": "2g"})
    monkeypatch.setenv("COBRANZA_SPARK_CONF", settings.spark_conf.model_dump_json())
    assert load_settings().spark_conf.properties() == {"spark.executor.memory": "2g"}
    monkeypatch.delenv("COBRANZA_SPARK_CONF")
    assert load_settings().spark_conf.properties() == {}


def test_a_tracking_uri_password_is_masked():
    uri = "postgresql+psycopg://mlflow:s3cr%40t@db.internal:5432/mlflow?sslmode=require"
    assert (
        masked_uri(uri) == "postgresql+psycopg://mlflow:***@db.internal:5432/mlflow?sslmode=require"
    )
    assert masked_uri("postgresql+psycopg://mlflow@db:5432/mlflow") == (
        "postgresql+psycopg://mlflow@db:5432/mlflow"
    )
    assert (
        masked_uri("sqlite:////lake/ml_metadata/mlflow.db")
        == "sqlite:////lake/ml_metadata/mlflow.db"
    )
    logged = load_settings(mlflow_tracking_uri=uri).public_dict()
    assert "s3cr" not in json.dumps(logged)
