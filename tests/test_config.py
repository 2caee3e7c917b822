"""Settings precedence: CLI override > COBRANZA_* variable > cobranza.toml > default."""

from pathlib import Path

from cobranza.config import load_settings


def test_precedence(tmp_path, monkeypatch):
    toml = tmp_path / "cobranza.toml"
    toml.write_text('lake = "from-toml"\nhorizon_days = 20\n[costs]\ncollection_action = 7000\n')
    monkeypatch.setenv("COBRANZA_CONFIG", str(toml))
    monkeypatch.setenv("COBRANZA_HORIZON_DAYS", "25")
    monkeypatch.setenv("COBRANZA_COSTS__LATER_COLLECTION_COST", "1234")
    s = load_settings()
    assert s.lake == Path("from-toml")
    assert s.horizon_days == 25
    assert s.costs.collection_action == 7000
    assert s.costs.later_collection_cost == 1234
    assert load_settings(lake=Path("cli")).lake == Path("cli")


def test_secret_never_in_public_dict(monkeypatch):
    monkeypatch.setenv("COBRANZA_PSEUDONYM_KEY", "s3cr3t-value")
    s = load_settings()
    assert s.pseudonym_key.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(s) and "s3cr3t-value" not in str(s.public_dict())
