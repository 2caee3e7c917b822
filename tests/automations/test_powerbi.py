"""The Power BI material (`bi/powerbi/`) against the real catalog and a real API server.

Power BI itself does not run here, so the files are parsed: each catalog query's SQL runs on the
real `catalog.duckdb` (read-only, as the DuckDB ODBC driver would open it) and returns exactly the
columns and types the query declares; each API query's request answers 200 on a live
`cobranza serve` with the columns the query reads; every column a DAX measure names exists.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import duckdb
import httpx
import pyarrow.parquet as pq
import pytest

from cobranza.lake.bi import bi_views

pytestmark = pytest.mark.slow
POWERBI = Path(__file__).resolve().parents[2] / "bi" / "powerbi"
QUERIES = POWERBI / "queries"
M_TYPES = {
    "type text": "VARCHAR",
    "type date": "DATE",
    "Int64.Type": "BIGINT",
    "type number": "DOUBLE",
    "type logical": "BOOLEAN",
    "type datetime": "TIMESTAMP",
}
M_STRING = r'"((?:[^"]|"")*)"'


def m_text(value: str) -> str:
    return value.replace('""', '"')


def typed_columns(text: str) -> list[tuple[str, str]]:
    block = text[text.index("Table.TransformColumnTypes") :]
    return re.findall(r'\{"(\w+)",\s*(type \w+|Int64\.Type)\}', block)


def catalog_query(text: str) -> tuple[str, str, str]:
    """(connection string before CatalogPath, after it, SQL) of an `Odbc.Query` call."""
    m = re.search(
        rf"Odbc\.Query\(\s*{M_STRING}\s*&\s*CatalogPath\s*&\s*{M_STRING}\s*,\s*{M_STRING}\s*\)",
        text,
    )
    assert m, "no Odbc.Query(... & CatalogPath & ..., SQL) call"
    return m_text(m.group(1)), m_text(m.group(2)), m_text(m.group(3))


def api_request(text: str) -> tuple[str, dict[str, str]]:
    """RelativePath and the first page's Query record of a `Web.Contents` call."""
    path = re.search(rf"RelativePath\s*=\s*{M_STRING}", text).group(1)
    record = re.search(r"Query\s*=\s*\[([^\]]*)\]", text)
    query = dict(re.findall(rf"(\w+)\s*=\s*{M_STRING}", record.group(1))) if record else {}
    assert '#"X-API-Key" = ApiKey' in text, "the key goes in the X-API-Key header"
    return path, query


def test_pbids_is_a_read_only_odbc_connection_to_the_catalog():
    pbids = json.loads((POWERBI / "cobranza_catalog.pbids").read_text(encoding="utf-8"))
    assert pbids["version"] == "0.1" and len(pbids["connections"]) == 1
    details = pbids["connections"][0]["details"]
    assert details["protocol"] == "odbc"
    parts = dict(p.split("=", 1) for p in details["address"]["connectionString"].split(";"))
    assert parts["Driver"] == "{DuckDB Driver}"
    assert parts["access_mode"] == "read_only"
    assert parts["Database"].endswith("catalog.duckdb")


def test_catalog_queries_run_on_the_real_catalog_with_their_declared_columns(served):
    lake = served["lake"]
    files = sorted((QUERIES / "catalog").glob("*.pq"))
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    seen_views = set()
    try:
        for path in files:
            text = path.read_text(encoding="utf-8")
            before, after, sql = catalog_query(text)
            assert before == "Driver={DuckDB Driver};Database=", path.name
            assert after == ";access_mode=read_only", path.name
            seen_views |= set(re.findall(r"\bbi\.(\w+)", sql))
            cur = con.execute(sql)
            got = [(d[0], str(d[1])) for d in cur.description]
            rows = cur.fetchall()
            declared = [(name, M_TYPES[m_type]) for name, m_type in typed_columns(text)]
            assert got == declared, path.name
            assert rows, f"{path.name} returned no rows"
    finally:
        con.close()
    assert seen_views == set(bi_views(lake)), "one query per BI view"


def test_api_queries_answer_200_with_the_columns_they_read(served):
    base = served["server"].url
    headers = {"X-API-Key": served["keys"]["viewer"]}
    summary = httpx.get(f"{base}/v1/summary", headers=headers, timeout=60).json()
    files = sorted((QUERIES / "api").glob("*.pq"))
    assert {p.stem for p in files} == {"ApiWorklist", "ApiCurrentScores", "ApiSummaryByProduct"}
    for path in files:
        text = path.read_text(encoding="utf-8")
        rel, query = api_request(text)
        rows, cursor, pages = [], None, 0
        while True:  # follow X-Next-Cursor as the query's List.Generate does
            params = {**query, **({"cursor": cursor} if cursor else {})}
            resp = httpx.get(f"{base}/{rel}", params=params, headers=headers, timeout=60)
            assert resp.status_code == 200, (path.name, resp.text[:300])
            pages += 1
            if query.get("format") == "csv":
                page = list(csv.DictReader(io.StringIO(resp.text)))
                columns = set(page[0]) if page else set()
            elif query.get("format") == "parquet":
                table = pq.read_table(io.BytesIO(resp.content))
                page, columns = table.to_pylist(), set(table.column_names)
            else:
                body = resp.json()
                page = body["by_product"]
                columns = set(page[0])
            rows += page
            if query.get("format") == "parquet":
                block = re.search(r"Table\.SelectColumns\(\w+,\s*\{([^}]*)\}", text).group(1)
                wanted = set(re.findall(M_STRING, block))
            else:
                wanted = {c for c, _ in typed_columns(text)}
            assert wanted and wanted <= columns, (path.name, wanted - columns)
            cursor = resp.headers.get("x-next-cursor")
            if not cursor or not query:
                break
        if path.stem == "ApiWorklist":
            assert len(rows) == summary["decisions"]["ASSIGN"]
            assert {r["decision"] for r in rows} == {"ASSIGN"}
            # the calling order: no covering mandate first, then the lowest probability
            order = [(r["eligible"] == "True", float(r["probability"] or -1)) for r in rows]
            assert order == sorted(order) and {e for e, _ in order} == {False, True}
        elif path.stem == "ApiCurrentScores":
            assert len(rows) == summary["population"]
        else:
            assert sum(r["population"] for r in rows) == summary["population"]


def test_measures_name_only_existing_columns():
    text = (POWERBI / "measures.dax").read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("//"))
    measures = set(re.findall(r"MEASURE\s+\w+\[([^\]]+)\]", body))
    assert {
        "Assigned Share",
        "Expected Savings",
        "Realized Self-Cure Rate",
        "NO_ASSIGN Precision",
    } <= measures
    columns = {}
    for path in (QUERIES / "catalog").glob("*.pq"):
        columns[path.stem] = {c for c, _ in typed_columns(path.read_text(encoding="utf-8"))}
    refs = re.findall(r"\b(\w+)\[([^\]]+)\]", body)
    assert refs
    for table, column in refs:
        assert table in columns, f"unknown table {table}"
        assert column in columns[table] or column in measures, f"{table}[{column}]"
    for name in re.findall(r"(?<![\w\]])\[([^\]]+)\]", body):
        assert name in measures, f"unknown measure [{name}]"
