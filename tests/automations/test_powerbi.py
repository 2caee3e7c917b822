"""The Power BI material (`bi/powerbi/`) against the real catalog and a real API server.

Power BI itself does not run here, so the files are parsed. The PBIP project is the generator's
output for a real catalog with every `bi` view (regenerated here and compared with the committed
copy); its TMDL is read by a strict parser (`tests.lake.tmdl`): every table is a `bi` view with
the same columns and types, each partition's SQL runs on the real `catalog.duckdb` (read-only, as
the DuckDB ODBC driver opens it) and returns exactly the declared columns, relationships join
existing columns many to one, the date table is marked, every measure has a format string and
names only existing columns and measures, and no file holds a path. Each API query's request
answers 200 on a live `cobranza serve` with the columns the query reads.
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
from cobranza.lake.powerbi import TABLES, TYPES, catalog_columns, powerbi_project
from tests.lake.tmdl import load

pytestmark = pytest.mark.slow
POWERBI = Path(__file__).resolve().parents[2] / "bi" / "powerbi"
QUERIES = POWERBI / "queries"
DEFINITION = POWERBI / "cobranza.SemanticModel" / "definition"
REGENERATE = (
    'regenerate it: python -c "from cobranza.lake.powerbi import write_project; '
    "write_project('<lake with every bi view>', 'bi/powerbi')\" (see docs/power-bi.md)"
)
M_STRING = r'"((?:[^"]|"")*)"'


def m_text(value: str) -> str:
    return value.replace('""', '"')


def typed_columns(text: str) -> list[tuple[str, str]]:
    block = text[text.index("Table.TransformColumnTypes") :]
    return re.findall(r'\{"(\w+)",\s*(type \w+|Int64\.Type)\}', block)


def api_request(text: str) -> tuple[str, dict[str, str]]:
    """RelativePath and the first page's Query record of a `Web.Contents` call."""
    path = re.search(rf"RelativePath\s*=\s*{M_STRING}", text).group(1)
    record = re.search(r"Query\s*=\s*\[([^\]]*)\]", text)
    query = dict(re.findall(rf"(\w+)\s*=\s*{M_STRING}", record.group(1))) if record else {}
    assert '#"X-API-Key" = ApiKey' in text, "the key goes in the X-API-Key header"
    return path, query


def test_pbids_opens_the_catalog_through_a_dsn_without_a_path():
    pbids = json.loads((POWERBI / "cobranza_catalog.pbids").read_text(encoding="utf-8"))
    assert pbids["version"] == "0.1" and len(pbids["connections"]) == 1
    details = pbids["connections"][0]["details"]
    assert details["protocol"] == "odbc"
    parts = dict(p.split("=", 1) for p in details["address"]["connectionString"].split(";"))
    assert parts == {"DSN": "cobranza", "access_mode": "read_only"}


def test_no_file_holds_a_path_or_a_key():
    for path in POWERBI.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"\b[A-Za-z]:\\\\", text), path
            assert not re.search(r"cbz_[0-9a-f]{12}_", text), path
    assert not (POWERBI / "measures.dax").exists()  # the measures live in the TMDL model


def test_committed_project_is_the_generator_output_for_the_real_catalog(served):
    columns = catalog_columns(served["lake"].catalog_path)
    assert set(columns) == set(bi_views(served["lake"])) == set(TABLES), "every bi view exists"
    files = powerbi_project(columns)
    for rel, text in files.items():
        path = POWERBI / rel
        assert path.exists(), f"{rel} is missing; {REGENERATE}"
        assert path.read_text(encoding="utf-8") == text, f"{rel} is stale; {REGENERATE}"
    generated = {POWERBI / rel for rel in files}
    for folder in ("cobranza.SemanticModel", "cobranza.Report"):
        for path in (POWERBI / folder).rglob("*"):
            assert not path.is_file() or path in generated, f"{path} is not generated"


def test_tmdl_tables_are_the_bi_views_and_their_partitions_run(served):
    model = load(DEFINITION)
    columns = catalog_columns(served["lake"].catalog_path)
    by_name = {TABLES[v]: v for v in TABLES}
    assert set(model.tables) == {TABLES[v] for v in columns}
    con = duckdb.connect(str(served["lake"].catalog_path), read_only=True)
    try:
        for name, table in model.tables.items():
            view = by_name[name]
            declared = [
                (c.properties["sourceColumn"], c.properties["dataType"])
                for c in table.child("column")
            ]
            assert declared == [(c, TYPES[t][0]) for c, t in columns[view]], name
            (partition,) = table.child("partition")
            assert partition.expression.startswith("let") and partition.properties == {
                "mode": "import"
            }
            m = re.search(rf"Odbc\.Query\(CatalogConnection, {M_STRING}\)", partition.expression)
            assert m, name
            cur = con.execute(m_text(m.group(1)))
            got = [(d[0], str(d[1])) for d in cur.description]
            assert [c for c, _ in got] == [c for c, _ in declared], name
            for (col, duck), (_, data_type) in zip(got, declared, strict=True):
                assert TYPES[duck][0] == data_type, (name, col, duck)
            assert cur.fetchall(), f"{name} returned no rows"
            typed = dict(
                re.findall(rf"\{{{M_STRING}, (type \w+|Int64\.Type)\}}", partition.expression)
            )
            assert list(typed) == [c for c, _ in declared], name
    finally:
        con.close()


def test_relationships_join_existing_columns_many_to_one(served):
    model = load(DEFINITION)
    by_name = {TABLES[v]: v for v in TABLES}
    con = duckdb.connect(str(served["lake"].catalog_path), read_only=True)
    try:
        pairs = []
        for rel in model.relationships:
            sides = []
            for key in ("fromColumn", "toColumn"):
                table, column = re.fullmatch(
                    r"('(?:[^']|'')+'|\w+)\.(\w+)", rel.properties[key]
                ).groups()
                table = table.strip("'").replace("''", "'")
                assert column in {c.name for c in model.tables[table].child("column")}, (
                    rel.properties
                )
                sides.append((by_name[table], column))
            (many, many_col), (one, one_col) = sides
            rows, distinct = con.execute(
                f"SELECT count(*), count(DISTINCT {one_col}) FROM bi.{one}"
            ).fetchone()
            assert rows == distinct > 0, f"{one}.{one_col} is not unique"
            orphans = con.execute(
                f"SELECT count(*) FROM bi.{many} WHERE {many_col} IS NOT NULL AND {many_col} NOT IN "
                f"(SELECT {one_col} FROM bi.{one})"
            ).fetchone()[0]
            assert orphans == 0, (many, many_col, one, one_col)
            pairs.append((many, one))
        assert ("fact_decisions", "dim_date") in pairs and ("fact_outcomes", "dim_outcome") in pairs
        assert len(set(pairs)) == len(pairs) == len(model.relationships)
    finally:
        con.close()


def test_date_table_is_marked_with_a_contiguous_key(served):
    model = load(DEFINITION)
    dates = model.tables[TABLES["dim_date"]]
    assert dates.properties["dataCategory"] == "Time"
    (key,) = [c for c in dates.child("column") if "isKey" in c.flags]
    assert key.name == "date" and key.properties["dataType"] == "dateTime"
    con = duckdb.connect(str(served["lake"].catalog_path), read_only=True)
    try:
        n, distinct, span = con.execute(
            "SELECT count(*), count(DISTINCT date), max(date) - min(date) + 1 FROM bi.dim_date"
        ).fetchone()
    finally:
        con.close()
    assert n == distinct == span  # one row per day, no gap: what Power BI needs to mark it


def test_measures_have_formats_spanish_names_and_existing_references():
    model = load(DEFINITION)
    columns = {t: {c.name for c in node.child("column")} for t, node in model.tables.items()}
    measures = {m.name: m for node in model.tables.values() for m in node.child("measure")}
    assert {
        "Obligaciones",
        "Gestionar",
        "No gestionar",
        "% gestionadas",
        "Ahorro esperado del corte actual",
        "Tasa de autocura realizada",
        "Precisión de no gestionar",
        "AUC fuera de tiempo del campeón",
        "Variables en alerta",
        "Filas en cuarentena",
    } <= set(measures)
    for name, m in measures.items():
        assert m.properties.get("formatString"), name
        assert m.description, name
        refs = re.findall(r"'((?:[^']|'')+)'\[([^\]]+)\]", m.expression)
        for table in re.findall(r"'((?:[^']|'')+)'", m.expression):
            assert table.replace("''", "'") in model.tables, (name, table)
        for table, column in refs:
            assert column in columns[table.replace("''", "'")], (name, table, column)
        bare = re.sub(r"'(?:[^']|'')+'\[[^\]]+\]", "", m.expression)
        for ref in re.findall(r"\[([^\]]+)\]", bare):
            assert ref in measures, (name, ref)
    percents = {n for n, m in measures.items() if m.properties["formatString"] == "0.0%"}
    assert {"% gestionadas", "Tasa de autocura realizada"} <= percents


def test_the_lake_path_is_a_parameter_of_the_model():
    model = load(DEFINITION)
    lake_path = model.expressions["LakePath"]
    assert lake_path.expression.startswith('""') and "IsParameterQuery=true" in lake_path.expression
    connection = model.expressions["CatalogConnection"].expression
    assert "LakePath" in connection and "access_mode=read_only" in connection
    assert '"Driver={DuckDB Driver};Database=" & Carpeta & "\\catalog.duckdb' in connection
    assert model.model.properties["culture"] == "es-CO"
    assert "discourageImplicitMeasures" in model.model.flags
    pbip = json.loads((POWERBI / "cobranza.pbip").read_text(encoding="utf-8"))
    assert pbip["artifacts"] == [{"report": {"path": "cobranza.Report"}}]
    pbir = json.loads((POWERBI / "cobranza.Report" / "definition.pbir").read_text(encoding="utf-8"))
    assert pbir["datasetReference"] == {"byPath": {"path": "../cobranza.SemanticModel"}}


def test_api_queries_answer_200_with_the_columns_they_read(served):
    """The API queries (for a Power BI machine that cannot see the lake's path)."""
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
            # the calling order: no covering mandate first, then the largest expected benefit
            order = [(r["eligible"] == "True", -float(r["expected_benefit"] or 0.0)) for r in rows]
            assert order == sorted(order) and {e for e, _ in order} == {False, True}
        elif path.stem == "ApiCurrentScores":
            assert len(rows) == summary["population"]
        else:
            assert sum(r["population"] for r in rows) == summary["population"]
