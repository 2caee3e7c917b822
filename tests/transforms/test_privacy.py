"""Personal data and the bank's client_id stop at raw: no silver or gold column or value carries them."""

from __future__ import annotations

import pandas as pd
import pytest

from cobranza.contract import PERSONAL_COLUMNS
from cobranza.lake import Lake
from tests.transforms.conftest import read_table

FORBIDDEN_COLUMNS = {c for cols in PERSONAL_COLUMNS.values() for c in cols} | {
    "client_id",
    "account_id",
    "birth_date",
}


def _personal_values(tables: dict) -> set[str]:
    out = set()
    for row in tables["clients"]:
        for col in ("client_id", "document_number", "full_name", "email", "phone"):
            if row.get(col):
                out.add(str(row[col]))
    out |= {m["account_id"] for m in tables["debit_mandates"]}
    return out


def test_no_personal_columns_or_values(duckdb_lake, small_extract):
    lake = Lake(duckdb_lake)
    personal = _personal_values(small_extract[0])
    seen = 0
    for zone in ("silver", "gold"):
        for table in lake.tables(zone):
            df = read_table(duckdb_lake, zone, table)
            assert not FORBIDDEN_COLUMNS & set(df.columns), f"{zone}.{table}"
            for col in df.columns:
                if pd.api.types.is_object_dtype(df[col]) or pd.api.types.is_string_dtype(df[col]):
                    values = set(df[col].dropna().astype(str))
                    seen += len(values)
                    assert not values & personal, f"{zone}.{table}.{col} holds personal data"
    assert seen > 100


def test_client_key_is_a_keyed_hash(duckdb_lake, small_extract):
    clients = read_table(duckdb_lake, "silver", "clients")
    assert clients["client_key"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert clients["client_key"].is_unique and len(clients) == len(small_extract[0]["clients"])
    gold = read_table(duckdb_lake, "gold", "obligation_snapshots")
    assert set(gold["client_key"]) <= set(clients["client_key"])


@pytest.mark.parametrize(
    "key", [b"k" * 32, bytes(range(256)) * 1 + b"longer than a block", "clave-ñandú-é".encode()]
)
def test_pseudonym_is_the_hmac_sha256_of_purpose_and_id(key):
    """The Ibis expression equals Python's `hmac` for any key length and non-ASCII ids."""
    import hashlib
    import hmac

    import ibis

    from cobranza.transforms.silver import pseudonym

    ids = ["C000001", "ñandú-7", "", "x" * 200]
    table = ibis.memtable({"client_id": ids})
    expr = table.select(k=pseudonym(table.client_id, key, "client"))
    got = list(ibis.duckdb.connect().execute(expr)["k"])
    want = [hmac.new(key, f"client:{i}".encode(), hashlib.sha256).hexdigest() for i in ids]
    assert got == want


def test_every_keyed_table_gets_the_hmac_of_its_own_ids_from_the_shared_maps():
    """One map per purpose serves every table: an id only one table carries (an account with
    months but no mandate, a client id in obligations only) still gets its own pseudonym, a
    missing id gets none, and client and account keys of the same text differ."""
    import hashlib
    import hmac

    import ibis

    from cobranza.transforms.pipeline import key_maps
    from cobranza.transforms.silver import with_pseudonym

    key = b"s" * 32
    raw = {
        "clients": ibis.memtable({"client_id": ["C1", "A1"]}),
        "obligations": ibis.memtable({"client_id": ["C1", "C9"], "obligation_id": ["O1", "O2"]}),
        "debit_mandates": ibis.memtable({"account_id": ["A1", None], "mandate_id": ["M1", "M2"]}),
        "account_monthly": ibis.memtable({"account_id": ["A1", "A7", "A7"], "month": [1, 1, 2]}),
    }
    keys = key_maps(raw, key)
    con = ibis.duckdb.connect()

    def hmac_of(purpose: str, value: str | None) -> str | None:
        if value is None:
            return None
        return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    for table, column, purpose in (
        ("clients", "client_id", "client"),
        ("obligations", "client_id", "client"),
        ("debit_mandates", "account_id", "account"),
        ("account_monthly", "account_id", "account"),
    ):
        out = con.execute(with_pseudonym(raw[table], column, keys[f"{purpose}_keys"], "k"))
        out = out.astype(object).where(out.notna(), None)
        assert len(out) == raw[table].count().execute(), table
        for value, got in zip(out[column], out["k"], strict=True):
            assert got == hmac_of(purpose, value), (table, value)
    assert hmac_of("account", "A1") != hmac_of("client", "A1")
