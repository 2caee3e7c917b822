"""The Power BI project (PBIP, TMDL semantic model) generated from the catalog's `bi` views.

`powerbi_project(columns)` turns the columns of each `bi` view (name and DuckDB type, as a real
catalog reports them: `catalog_columns`) into the project's files: one TMDL table per view, its
import partition an `Odbc.Query` over the DuckDB ODBC driver with the view's explicit column list,
the relationships of the star, the date table marked as such (`dataCategory: Time`, key column),
the measures with their format strings and Spanish names, and a `LakePath` parameter from which
the connection string is built (no path in the files). `write_project(lake, out)` writes them;
the committed copy in `bi/powerbi/` is that output for a catalog with every view, and the tests
regenerate it from a real catalog and compare.

Identifiers (lineage tags, logical ids) are UUIDv5 of the object's name, so a regeneration changes
only what changed.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cobranza.lake.store import Lake

PROJECT = "cobranza"
NAMESPACE = uuid.UUID("6b1f3c52-8a1e-4f55-9a39-0c0b7f1d2e61")  # of this project's lineage tags
COMPATIBILITY_LEVEL = 1567
CULTURE = "es-CO"

# view -> table name people see
TABLES: dict[str, str] = {
    "fact_decisions": "Decisiones",
    "fact_outcomes": "Resultados",
    "scoring_runs": "Corridas de scoring",
    "dim_date": "Fecha",
    "dim_product": "Producto",
    "dim_segment": "Segmento",
    "dim_decision": "Decisión",
    "dim_arm": "Grupo del experimento",
    "dim_outcome": "Desenlace",
    "model_performance": "Desempeño del modelo",
    "savings": "Ahorro",
    "monitoring_runs": "Corridas de monitoreo",
    "monitoring_drift": "Deriva",
    "monitoring_performance": "Desempeño realizado",
    "quarantine": "Cuarentena",
}
DATE_TABLE, DATE_KEY = "dim_date", "date"

# (many side view, column) -> (one side view, column); single direction, many to one
RELATIONSHIPS: list[tuple[str, str, str, str]] = [
    ("fact_decisions", "cut_date", "dim_date", "date"),
    ("fact_decisions", "product", "dim_product", "product"),
    ("fact_decisions", "segment", "dim_segment", "segment"),
    ("fact_decisions", "decision", "dim_decision", "decision"),
    ("fact_decisions", "arm", "dim_arm", "arm"),
    ("fact_decisions", "results_version", "scoring_runs", "results_version"),
    ("fact_outcomes", "cut_date", "dim_date", "date"),
    ("fact_outcomes", "product", "dim_product", "product"),
    ("fact_outcomes", "segment", "dim_segment", "segment"),
    ("fact_outcomes", "decision", "dim_decision", "decision"),
    ("fact_outcomes", "arm", "dim_arm", "arm"),
    ("fact_outcomes", "outcome", "dim_outcome", "outcome"),
    ("monitoring_drift", "monitoring_run_id", "monitoring_runs", "monitoring_run_id"),
    ("monitoring_performance", "monitoring_run_id", "monitoring_runs", "monitoring_run_id"),
    ("monitoring_performance", "cut_date", "dim_date", "date"),
]


@dataclass(frozen=True)
class Measure:
    view: str  # the table it lives on
    name: str
    expression: str
    format: str
    description: str


COP = r"\$#,0;(\$#,0);\$#,0"
PCT = "0.0%"
INT = "#,0"


def _t(view: str) -> str:
    return "'" + TABLES[view].replace("'", "''") + "'"


def _m(body: str) -> str:
    """DAX with {D}, {R}... replaced by quoted table names."""
    names = {
        "D": _t("fact_decisions"),
        "R": _t("fact_outcomes"),
        "P": _t("model_performance"),
        "A": _t("savings"),
        "M": _t("monitoring_drift"),
        "C": _t("monitoring_runs"),
        "Q": _t("quarantine"),
    }
    return body.format(**names)


# fmt: off
MEASURES: list[Measure] = [
    Measure("fact_decisions", "Obligaciones", _m("COUNTROWS({D})"), INT,
            "Obligaciones en mora temprana decididas (la última corrida de cada corte)."),
    Measure("fact_decisions", "Gestionar", _m('CALCULATE(COUNTROWS({D}), {D}[decision] = "ASSIGN")'),
            INT, "Obligaciones enviadas a gestión de cobranza (ASSIGN)."),
    Measure("fact_decisions", "No gestionar", _m('CALCULATE(COUNTROWS({D}), {D}[decision] = "NO_ASSIGN")'),
            INT, "Obligaciones dejadas al débito automático (NO_ASSIGN)."),
    Measure("fact_decisions", "% gestionadas", "DIVIDE([Gestionar], [Obligaciones])", PCT,
            "Parte de las obligaciones que va a gestión."),
    Measure("fact_decisions", "Ahorro esperado", _m("SUM({D}[expected_saving])"), COP,
            "Pesos que se espera ahorrar frente a gestionar todo: menos el beneficio esperado de "
            "gestionar de cada no gestionada (fórmula de GET /v1/summary)."),
    Measure("fact_decisions", "Ahorro esperado del corte actual",
            _m("CALCULATE([Ahorro esperado], {D}[is_current] = TRUE())"), COP,
            "Ahorro esperado de la población vigente; igual al expected_savings de la API."),
    Measure("fact_decisions", "Probabilidad media de autocura",
            _m("AVERAGE({D}[probability])"), PCT, "Media de la probabilidad de autocura."),
    Measure("fact_decisions", "Riesgo medio de rodar sin gestión",
            _m("AVERAGE({D}[p_roll_no_action])"), PCT,
            "Media de la probabilidad de rodar a 31+ días si no se gestiona."),
    Measure("fact_decisions", "Riesgo medio de rodar con gestión",
            _m("AVERAGE({D}[p_roll_action])"), PCT,
            "Media de la probabilidad de rodar a 31+ días si se gestiona."),
    Measure("fact_decisions", "Beneficio esperado de gestionar",
            _m('CALCULATE(SUM({D}[expected_benefit]), {D}[decision] = "ASSIGN")'), COP,
            "Pesos que se espera que la gestión de las obligaciones gestionadas evite, neto del "
            "costo de gestionarlas."),
    Measure("fact_decisions", "Monto vencido", _m("SUM({D}[amount_past_due])"), COP,
            "Suma del monto vencido."),
    Measure("fact_outcomes", "Decisiones cerradas", _m("COUNTROWS({R})"), INT,
            "Decisiones cuyo horizonte ya cerró (resultado conocido)."),
    Measure("fact_outcomes", "Tasa de autocura realizada",
            _m("DIVIDE(SUM({R}[self_cure_debit]), COUNTROWS({R}))"), PCT,
            "Parte de las decisiones cerradas que se pagó solo con el débito."),
    Measure("fact_outcomes", "Precisión de no gestionar",
            _m('DIVIDE(CALCULATE(COUNTROWS({R}), {R}[decision] = "NO_ASSIGN", '
                   '{R}[outcome] <> "rolled_31_plus"), '
                   'CALCULATE(COUNTROWS({R}), {R}[decision] = "NO_ASSIGN"))'), PCT,
            "De las no gestionadas, la parte que no rodó a 31+ días."),
    Measure("fact_outcomes", "Fugas",
            _m('CALCULATE(COUNTROWS({R}), {R}[decision] = "NO_ASSIGN", '
                   '{R}[outcome] = "rolled_31_plus")'),
            INT, "No gestionadas que rodaron a 31+ días de mora."),
    Measure("fact_outcomes", "Curadas con el débito",
            _m('CALCULATE(COUNTROWS({R}), {R}[outcome] = "cured_by_debit")'), INT,
            "Decisiones cerradas que se pagaron solo con el débito automático."),
    Measure("fact_outcomes", "Tasa de rodamiento a 31+ realizada",
            _m("DIVIDE(SUM({R}[roll_31_plus]), COUNT({R}[roll_31_plus]))"), PCT,
            "Parte de las decisiones cerradas que rodó a 31+ días de mora."),
    Measure("fact_outcomes", "Ahorro realizado", _m("SUM({R}[realized_saving])"), COP,
            "Pesos ahorrados de verdad por las decisiones cerradas."),
    Measure("fact_outcomes", "Ahorro esperado de decisiones cerradas",
            _m("SUM({R}[expected_saving])"), COP,
            "Lo que esas mismas decisiones esperaban ahorrar."),
    Measure("model_performance", "AUC fuera de tiempo del campeón",
            _m('CALCULATE(MAX({P}[value]), {P}[part] = "oot", {P}[metric] = "auc", '
                   "{P}[is_champion] = TRUE())"), "0.000",
            "AUC del modelo campeón en los meses fuera de tiempo."),
    Measure("model_performance", "ECE fuera de tiempo del campeón",
            _m('CALCULATE(MAX({P}[value]), {P}[part] = "oot", {P}[metric] = "ece", '
                   "{P}[is_champion] = TRUE())"), "0.0000",
            "Error de calibración del campeón fuera de tiempo."),
    Measure("savings", "Ahorro neto esperado fuera de tiempo",
            _m('CALCULATE(SUM({A}[expected_net_savings]), {A}[scope] = "out_of_time", '
                   "{A}[computed_at] = MAX({A}[computed_at]))"), COP,
            "Ahorro neto esperado fuera de tiempo frente a gestionar todo, según la última "
            "corrida de impacto."),
    Measure("savings", "Ahorro neto esperado hoy",
            _m('CALCULATE(SUM({A}[expected_net_savings]), {A}[scope] = "current", '
                   "{A}[computed_at] = MAX({A}[computed_at]))"), COP,
            "Ahorro neto esperado del corte vigente frente a gestionar todo, según la última "
            "corrida de impacto: el de las decisiones menos el costo del grupo de control."),
    Measure("savings", "Ahorro esperado de las decisiones hoy",
            _m('CALCULATE(SUM({A}[expected_savings_without_holdout]), {A}[scope] = "current", '
                   "{A}[computed_at] = MAX({A}[computed_at]))"), COP,
            "Lo que ahorran las decisiones de la política en el corte vigente, valorando cada "
            "obligación del grupo de control como la habría decidido la política."),
    Measure("savings", "Costo esperado del grupo de control hoy",
            _m('CALCULATE(SUM({A}[expected_holdout_cost]), {A}[scope] = "current", '
                   "{A}[computed_at] = MAX({A}[computed_at]))"), COP,
            "Lo que cuesta dejar sin gestión el grupo de control del experimento: el beneficio "
            "esperado de gestionar las obligaciones que la política habría gestionado."),
    Measure("savings", "Parte del ahorro del oráculo capturada",
            _m('CALCULATE(MAX({A}[share_of_oracle_captured]), {A}[scope] = "out_of_time", '
                   "{A}[computed_at] = MAX({A}[computed_at]))"), PCT,
            "Del ahorro de decidir con las probabilidades verdaderas, la parte que captura la "
            "política (solo con la verdad del simulador)."),
    Measure("monitoring_drift", "PSI máximo",
            _m("CALCULATE(MAX({M}[psi]), {M}[is_score] = FALSE())"), "0.000",
            "El mayor PSI entre las variables."),
    Measure("monitoring_drift", "Variables en alerta",
            _m('CALCULATE(COUNTROWS({M}), {M}[status] = "ALERT", {M}[is_score] = FALSE())'),
            INT, "Variables con PSI de alerta."),
    Measure("monitoring_runs", "Corridas de monitoreo en alerta",
            _m('CALCULATE(COUNTROWS({C}), {C}[status] = "ALERT")'), INT,
            "Corridas de monitoreo cuyo estado fue alerta."),
    Measure("quarantine", "Filas en cuarentena", _m("COUNTROWS({Q})"), INT,
            "Celdas o filas rechazadas por la ingesta vigente (sin el valor rechazado)."),
]
# fmt: on

# DuckDB type -> (TMDL dataType, Power Query type)
TYPES: dict[str, tuple[str, str]] = {
    "VARCHAR": ("string", "type text"),
    "DATE": ("dateTime", "type date"),
    "TIMESTAMP": ("dateTime", "type datetime"),
    "TIMESTAMP WITH TIME ZONE": ("dateTime", "type datetime"),
    "BIGINT": ("int64", "Int64.Type"),
    "INTEGER": ("int64", "Int64.Type"),
    "HUGEINT": ("int64", "Int64.Type"),
    "DOUBLE": ("double", "type number"),
    "FLOAT": ("double", "type number"),
    "BOOLEAN": ("boolean", "type logical"),
}


def _column_format(name: str, duck_type: str) -> str | None:
    if duck_type == "DATE":
        return "yyyy-mm-dd"
    if duck_type.startswith("TIMESTAMP"):
        return "yyyy-mm-dd hh:nn"
    if duck_type in ("BIGINT", "INTEGER", "HUGEINT"):
        return "0" if name in ("year", "quarter", "month", "day", "line") else INT
    if duck_type not in ("DOUBLE", "FLOAT"):
        return None
    if name == "js":
        return "0.000"
    shares = ("probability", "p_roll_no_action", "p_roll_action", "true_mean_effect_on_roll")
    if (
        name in shares
        or name.endswith(("_rate", "_share", "_probability", "provision_step"))
        or "share_of" in name
    ):
        return PCT
    money = ("amount_past_due", "collection_action", "roll_loss", "expected_benefit")
    if name in money or "saving" in name or name.endswith("_cost"):
        return INT
    return "0.000"


def tag(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def quote(name: str) -> str:
    """A TMDL object name: bare when it is a plain identifier, else in single quotes."""
    if name.replace("_", "a").isalnum() and name.isascii() and not name[0].isdigit():
        return name
    return "'" + name.replace("'", "''") + "'"


def _select(view: str, cols: list[tuple[str, str]]) -> str:
    items = [
        f"timezone('UTC', {c}) AS {c}" if t == "TIMESTAMP WITH TIME ZONE" else c for c, t in cols
    ]
    return f"SELECT {', '.join(items)} FROM bi.{view}"


def _m_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def table_tmdl(view: str, cols: list[tuple[str, str]]) -> str:
    """One table: measures, columns (with types and formats), the import partition."""
    name = TABLES[view]
    lines = [f"table {quote(name)}", f"\tlineageTag: {tag('table', view)}"]
    if view == DATE_TABLE:
        lines.append("\tdataCategory: Time")
    lines.append("")
    for m in (m for m in MEASURES if m.view == view):
        lines += [
            f"\t/// {m.description}",
            f"\tmeasure {quote(m.name)} = {m.expression}",
            f"\t\tformatString: {m.format}",
            f"\t\tlineageTag: {tag('measure', view, m.name)}",
            "",
        ]
    for col, duck in cols:
        data_type, _ = TYPES[duck]
        lines.append(f"\tcolumn {quote(col)}")
        lines.append(f"\t\tdataType: {data_type}")
        if view == DATE_TABLE and col == DATE_KEY:
            lines.append("\t\tisKey")
        fmt = _column_format(col, duck)
        if fmt:
            lines.append(f"\t\tformatString: {fmt}")
        lines += [
            f"\t\tlineageTag: {tag('column', view, col)}",
            "\t\tsummarizeBy: none",
            f"\t\tsourceColumn: {col}",
            "",
        ]
    types = ", ".join(f"{{{_m_string(c)}, {TYPES[t][1]}}}" for c, t in cols)
    lines += [
        f"\tpartition {quote(name)} = m",
        "\t\tmode: import",
        "\t\tsource =",
        "\t\t\t\tlet",
        f"\t\t\t\t    Origen = Odbc.Query(CatalogConnection, {_m_string(_select(view, cols))}),",
        f"\t\t\t\t    Tipos = Table.TransformColumnTypes(Origen, {{{types}}})",
        "\t\t\t\tin",
        "\t\t\t\t    Tipos",
        "",
        "\tannotation PBI_ResultType = Table",
        "",
    ]
    return "\n".join(lines)


EXPRESSIONS = """expression LakePath = "" meta [IsParameterQuery=true, Type="Text", IsParameterQueryRequired=false]
\tlineageTag: {lake_tag}

\tannotation PBI_ResultType = Text

/// La cadena ODBC del catálogo del lago (solo lectura), construida desde LakePath.
expression CatalogConnection =
\t\tlet
\t\t    Carpeta = Text.TrimEnd(LakePath, {{"\\", "/"}}),
\t\t    Conexion = if Carpeta = "" then error Error.Record("cobranza", "Defina el parámetro LakePath: la carpeta del lago de cobranza, la que contiene catalog.duckdb (Transformar datos > Editar parámetros).") else "Driver={{DuckDB Driver}};Database=" & Carpeta & "\\catalog.duckdb;access_mode=read_only"
\t\tin
\t\t    Conexion
\tlineageTag: {conn_tag}

\tannotation PBI_ResultType = Text
"""


def relationships_tmdl(views: set[str]) -> str:
    out = []
    for many, many_col, one, one_col in RELATIONSHIPS:
        if many in views and one in views:
            out += [
                f"relationship {tag('relationship', many, many_col, one, one_col)}",
                f"\tfromColumn: {quote(TABLES[many])}.{quote(many_col)}",
                f"\ttoColumn: {quote(TABLES[one])}.{quote(one_col)}",
                "",
            ]
    return "\n".join(out)


def _json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _platform(kind: str) -> str:
    return _json(
        {
            "$schema": "https://developer.microsoft.com/json-schemas/fabric/gitIntegration/"
            "platformProperties/2.0.0/schema.json",
            "metadata": {"type": kind, "displayName": PROJECT},
            "config": {"version": "2.0", "logicalId": tag("item", kind)},
        }
    )


def _report_files() -> dict[str, str]:
    """A report with one empty page bound to the model (build the visuals in Desktop)."""
    base = "https://developer.microsoft.com/json-schemas/fabric/item/report/"
    page = "decisiones"
    report = f"{PROJECT}.Report"
    return {
        f"{report}/.platform": _platform("Report"),
        f"{report}/definition.pbir": _json(
            {
                "$schema": base + "definitionProperties/2.0.0/schema.json",
                "version": "4.0",
                "datasetReference": {"byPath": {"path": f"../{PROJECT}.SemanticModel"}},
            }
        ),
        f"{report}/definition/version.json": _json(
            {"$schema": base + "definition/versionMetadata/1.0.0/schema.json", "version": "2.0.0"}
        ),
        f"{report}/definition/report.json": _json(
            {
                "$schema": base + "definition/report/1.3.0/schema.json",
                "themeCollection": {
                    "baseTheme": {
                        "name": "CY24SU10",
                        "reportVersionAtImport": "5.59",
                        "type": "SharedResources",
                    }
                },
            }
        ),
        f"{report}/definition/pages/pages.json": _json(
            {
                "$schema": base + "definition/pagesMetadata/1.0.0/schema.json",
                "pageOrder": [page],
                "activePageName": page,
            }
        ),
        f"{report}/definition/pages/{page}/page.json": _json(
            {
                "$schema": base + "definition/page/1.0.0/schema.json",
                "name": page,
                "displayName": "Decisiones de hoy",
                "displayOption": "FitToPage",
                "height": 720,
                "width": 1280,
            }
        ),
    }


def powerbi_project(columns: dict[str, list[tuple[str, str]]]) -> dict[str, str]:
    """Every file of the project (relative path -> text) for the views in `columns`."""
    views = [v for v in TABLES if v in columns]
    model = f"{PROJECT}.SemanticModel"
    definition = f"{model}/definition"
    files = {
        f"{PROJECT}.pbip": _json(
            {
                "$schema": "https://developer.microsoft.com/json-schemas/fabric/pbip/"
                "pbipProperties/1.0.0/schema.json",
                "version": "1.0",
                "artifacts": [{"report": {"path": f"{PROJECT}.Report"}}],
                "settings": {"enableAutoRecovery": True},
            }
        ),
        f"{model}/.platform": _platform("SemanticModel"),
        f"{model}/definition.pbism": _json(
            {
                "$schema": "https://developer.microsoft.com/json-schemas/fabric/item/"
                "semanticModel/definitionProperties/1.0.0/schema.json",
                "version": "4.2",
                "settings": {},
            }
        ),
        f"{definition}/database.tmdl": (
            f"database {PROJECT}\n\tcompatibilityLevel: {COMPATIBILITY_LEVEL}\n"
        ),
        f"{definition}/model.tmdl": "\n".join(
            [
                "model Model",
                f"\tculture: {CULTURE}",
                "\tdefaultPowerBIDataSourceVersion: powerBI_V3",
                "\tdiscourageImplicitMeasures",
                f"\tsourceQueryCulture: {CULTURE}",
                "",
                *(f"ref table {quote(TABLES[v])}" for v in views),
                "",
                f"ref cultureInfo {CULTURE}",
                "",
            ]
        ),
        f"{definition}/cultures/{CULTURE}.tmdl": f"cultureInfo {CULTURE}\n",
        f"{definition}/expressions.tmdl": EXPRESSIONS.format(
            lake_tag=tag("expression", "LakePath"), conn_tag=tag("expression", "CatalogConnection")
        ),
        f"{definition}/relationships.tmdl": relationships_tmdl(set(views)),
        **{f"{definition}/tables/{TABLES[v]}.tmdl": table_tmdl(v, columns[v]) for v in views},
        **_report_files(),
    }
    return files


def catalog_columns(catalog: Path) -> dict[str, list[tuple[str, str]]]:
    """Each `bi` view's columns (name, DuckDB type) in order, from the catalog file (read-only)."""
    import duckdb

    con = duckdb.connect(str(catalog), read_only=True)
    try:
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE schema_name = 'bi' ORDER BY table_name, column_index"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, list[tuple[str, str]]] = {}
    for view, col, duck in rows:
        out.setdefault(view, []).append((col, duck))
    return out


def write_project(lake: Lake | Path | str, out: Path | str) -> list[Path]:
    """Generate the project from `lake`'s catalog into `out` (the generated files are replaced)."""
    from cobranza.lake.store import Lake

    lake = lake if isinstance(lake, Lake) else Lake(Path(lake))
    files = powerbi_project(catalog_columns(lake.catalog_path))
    out = Path(out)
    written = []
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written
