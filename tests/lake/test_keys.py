"""The pseudonym key: random per lake (owner-only file) or given; known and short keys refused.

The live test runs ingest and etl as jobs of a real `cobranza serve` on two fresh lakes built from
the same extract: their `client_key`s differ, and none equals a keyed hash under a known constant.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat

import pytest

from cobranza.config import load_settings
from cobranza.contract import STANDARD
from cobranza.lake import Lake
from cobranza.lake.keys import (
    DEVELOPMENT_KEYS,
    KEY_FILE,
    PseudonymKeyError,
    key_path,
    pseudonym_key,
)
from cobranza.simulate import SimulationConfig, simulate
from tests.api.conftest import LiveServer, free_port, wait_job
from tests.http import live_client
from tests.transforms.conftest import read_table


def test_a_lake_without_a_key_gets_a_random_owner_only_one_kept_across_runs(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    key_a = pseudonym_key(load_settings(lake=first))
    assert len(key_a) == 64 and pseudonym_key(load_settings(lake=first)) == key_a
    path = key_path(first)
    assert path.name == KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert pseudonym_key(load_settings(lake=second)) != key_a


def test_without_create_no_key_file_is_made(tmp_path):
    assert pseudonym_key(load_settings(lake=tmp_path), create=False) is None
    assert not key_path(tmp_path).exists()


def test_a_configured_key_wins_over_the_lake_file(tmp_path):
    pseudonym_key(load_settings(lake=tmp_path))
    given = "0123456789abcdef" * 4
    assert pseudonym_key(load_settings(lake=tmp_path, pseudonym_key=given)) == given.encode()


@pytest.mark.parametrize("key", [*sorted(DEVELOPMENT_KEYS), "short-key"])
def test_known_and_short_keys_are_refused_unless_development(tmp_path, key):
    with pytest.raises(PseudonymKeyError, match="COBRANZA_PSEUDONYM_DEVELOPMENT"):
        pseudonym_key(load_settings(lake=tmp_path, pseudonym_key=key))
    demo = load_settings(lake=tmp_path, pseudonym_key=key, pseudonym_development=True)
    assert pseudonym_key(demo) == key.encode()


def test_a_key_file_readable_by_others_is_refused(tmp_path):
    settings = load_settings(lake=tmp_path)
    pseudonym_key(settings)
    os.chmod(key_path(tmp_path), 0o644)
    with pytest.raises(PseudonymKeyError, match="chmod 600"):
        pseudonym_key(settings)


def test_a_symlinked_key_file_is_refused(tmp_path):
    settings = load_settings(lake=tmp_path)
    Lake(tmp_path).ensure()
    outside = tmp_path / "elsewhere.key"
    outside.write_text("f" * 64)
    os.chmod(outside, 0o600)
    key_path(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, key_path(tmp_path))
    with pytest.raises(PseudonymKeyError, match="cannot be read"):
        pseudonym_key(settings)


def test_etl_refuses_a_development_key(tmp_path):
    from cobranza.transforms import run_etl
    from tests.transforms.rawdata import publish_raw, random_extract

    tables, as_of = random_extract(n_clients=4, months=3, seed=1)
    publish_raw(tmp_path, tables, as_of)
    settings = load_settings(lake=tmp_path, pseudonym_key="cobranza-development-secret")
    with pytest.raises(PseudonymKeyError, match="known development key"):
        run_etl(settings)
    assert Lake(tmp_path).current_version("silver") is None


def _known_constant_hashes(client_ids: list[str]) -> set[str]:
    """What a client_key would be under any known constant, keyed-hash or plain-concatenation."""
    out = set()
    for constant in DEVELOPMENT_KEYS:
        for cid in client_ids:
            out.add(hashlib.sha256(f"{constant}:client:{cid}".encode()).hexdigest())
            out.add(hmac.new(constant.encode(), f"client:{cid}".encode(), "sha256").hexdigest())
    return out


@pytest.mark.slow
def test_two_fresh_lakes_served_from_one_extract_have_unrelated_pseudonyms(tmp_path):
    from cobranza.api.keys import create_key

    extract = tmp_path / "extract"
    simulate(extract, SimulationConfig(clients=80, months=6, seed=3, noise=0.0), STANDARD)
    keys_by_lake = []
    for name in ("one", "two"):
        lake = tmp_path / name / "lake"
        op = {"X-API-Key": create_key(load_settings(lake=lake), "operator", "t")["key"]}
        server = LiveServer(lake, free_port()).start()
        try:
            with live_client(base_url=server.url, timeout=60) as http:
                for body in (
                    {"type": "ingest", "params": {"extract_dir": str(extract)}},
                    {"type": "etl", "params": {}},
                ):
                    job = http.post("/v1/jobs", json=body, headers=op).json()
                    done = wait_job(server.url, op, job["job_id"], timeout=300)
                    assert done["status"] == "succeeded", done
        finally:
            server.stop()
        clients = read_table(lake, "silver", "clients")
        raw_ids = list(read_table(lake, "raw", "clients")["client_id"])
        keys_by_lake.append(set(clients["client_key"]))
        assert len(clients) == len(raw_ids) > 50
        assert not set(clients["client_key"]) & _known_constant_hashes(raw_ids)
        # the key the lake generated reproduces them: a keyed hash, not a plain digest
        key = key_path(lake).read_text().strip().encode()
        expected = {hmac.new(key, f"client:{c}".encode(), "sha256").hexdigest() for c in raw_ids}
        assert set(clients["client_key"]) == expected
    assert not keys_by_lake[0] & keys_by_lake[1]


def test_serve_refuses_a_development_key_with_one_line(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "COBRANZA_PSEUDONYM_KEY": "cobranza-development-secret"}
    env.pop("COBRANZA_PSEUDONYM_DEVELOPMENT", None)
    out = subprocess.run(
        [sys.executable, "-m", "cobranza.cli", "--lake", str(tmp_path), "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert "known development key" in out.stderr and "Traceback" not in out.stderr
