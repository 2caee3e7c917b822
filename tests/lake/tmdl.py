"""A strict parser of the TMDL subset `cobranza.lake.powerbi` writes, for the tests.

No TMDL parser on the package index works offline without Power BI's own libraries, so this one
reads exactly the constructs the generator uses and refuses anything else: tab indentation only
(one tab per level), objects `kind name` or `kind name = expression` (a multi-line expression on
the lines indented two levels deeper than its object, or after `source =`), properties
`name: value` or bare flags, `///` descriptions right before an object, `ref` lines in the model.
Names are bare identifiers or single-quoted with `''` for a quote. A line it does not understand
is an error naming the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# object kinds and where they may appear (parent kind; None = top level)
OBJECTS = {
    "database": None,
    "model": None,
    "table": None,
    "relationship": None,
    "expression": None,
    "cultureInfo": None,
    "measure": "table",
    "column": "table",
    "partition": "table",
    "annotation": "any",
}
PROPERTIES = {
    "database": {"compatibilityLevel"},
    "model": {"culture", "defaultPowerBIDataSourceVersion", "sourceQueryCulture"},
    "table": {"lineageTag", "dataCategory"},
    "measure": {"formatString", "lineageTag"},
    "column": {"dataType", "formatString", "lineageTag", "summarizeBy", "sourceColumn"},
    "partition": {"mode"},
    "relationship": {"fromColumn", "toColumn"},
    "expression": {"lineageTag"},
    "cultureInfo": set(),
    "annotation": set(),
}
FLAGS = {"model": {"discourageImplicitMeasures"}, "column": {"isKey"}}
DATA_TYPES = {"string", "int64", "double", "dateTime", "boolean"}
UUID = r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}"
NAME = rf"(?:[A-Za-z_][A-Za-z0-9_]*|{UUID}|[a-z]{{2}}-[A-Z]{{2}}|'(?:[^']|'')+')"
OBJECT_LINE = re.compile(rf"^(?P<kind>[A-Za-z]+) (?P<name>{NAME})(?: = ?(?P<expr>.*))?$")
REF_LINE = re.compile(rf"^ref (?P<kind>table|cultureInfo) (?P<name>{NAME})$")
PROPERTY_LINE = re.compile(r"^(?P<key>[A-Za-z]+): (?P<value>.+)$")


class TmdlError(ValueError):
    pass


@dataclass
class Node:
    kind: str
    name: str
    expression: str | None = None
    description: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    children: list[Node] = field(default_factory=list)
    refs: list[tuple[str, str]] = field(default_factory=list)

    def child(self, kind: str) -> list[Node]:
        return [c for c in self.children if c.kind == kind]


def unquote(name: str) -> str:
    return name[1:-1].replace("''", "'") if name.startswith("'") else name


def _depth(line: str, where: str) -> tuple[int, str]:
    body = line.lstrip("\t")
    if body.startswith(" ") and body.strip():
        raise TmdlError(f"{where}: indentation must be tabs")
    return len(line) - len(body), body


def parse(text: str, source: str = "<tmdl>") -> list[Node]:
    """The top-level objects of one TMDL file."""
    lines = text.split("\n")
    nodes: list[Node] = []
    stack: list[tuple[int, Node]] = []
    description: str | None = None
    i = 0
    while i < len(lines):
        where = f"{source}:{i + 1}"
        depth, body = _depth(lines[i], where)
        i += 1
        if not body.strip():
            continue
        if body.startswith("///"):
            description = body[3:].strip()
            continue
        ref = REF_LINE.match(body)
        if ref and depth == 0:
            if not nodes or nodes[-1].kind != "model":
                raise TmdlError(f"{where}: ref outside the model")
            nodes[-1].refs.append((ref["kind"], unquote(ref["name"])))
            continue
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else None
        if parent is not None and depth != stack[-1][0] + 1:
            raise TmdlError(f"{where}: indented {depth}, expected {stack[-1][0] + 1}")
        obj = OBJECT_LINE.match(body)
        if obj and obj["kind"] in OBJECTS:
            kind = obj["kind"]
            allowed = OBJECTS[kind]
            top_only = allowed is None and parent is not None
            wrong_parent = allowed not in (None, "any") and (
                parent is None or parent.kind != allowed
            )
            if top_only or wrong_parent:
                raise TmdlError(f"{where}: {kind} cannot be here")
            node = Node(kind, unquote(obj["name"]), description=description)
            description = None
            expr = obj["expr"]
            if expr is not None and expr.strip():
                node.expression = expr.strip()
            elif expr is not None:  # multi-line: the lines two levels deeper
                node.expression, i = _block(lines, i, depth + 2, where)
            (parent.children if parent else nodes).append(node)
            stack.append((depth, node))
            continue
        if description is not None:
            raise TmdlError(f"{where}: a description must come right before an object")
        if parent is None:
            raise TmdlError(f"{where}: not an object: {body!r}")
        if body == "source =" and parent.kind == "partition":
            parent.expression, i = _block(lines, i, depth + 2, where)
            continue
        prop = PROPERTY_LINE.match(body)
        if prop and prop["key"] in PROPERTIES[parent.kind]:
            if prop["key"] in parent.properties:
                raise TmdlError(f"{where}: {prop['key']} given twice")
            parent.properties[prop["key"]] = prop["value"]
            continue
        if body in FLAGS.get(parent.kind, set()):
            parent.flags.add(body)
            continue
        raise TmdlError(f"{where}: not understood in a {parent.kind}: {body!r}")
    return nodes


def _block(lines: list[str], i: int, depth: int, where: str) -> tuple[str, int]:
    out = []
    while i < len(lines):
        body = lines[i].lstrip("\t")  # expression text may indent with spaces after the tabs
        if body.strip() and len(lines[i]) - len(body) < depth:
            break
        out.append(lines[i][depth:] if body.strip() else "")
        i += 1
    while out and not out[-1]:
        out.pop()
    if not out:
        raise TmdlError(f"{where}: empty expression")
    return "\n".join(out), i


@dataclass
class Model:
    database: Node
    model: Node
    tables: dict[str, Node]
    relationships: list[Node]
    expressions: dict[str, Node]


def load(definition: Path) -> Model:
    """Every file of a `definition/` folder, checked against each other."""

    def one(path: Path, kind: str) -> list[Node]:
        nodes = parse(path.read_text(encoding="utf-8"), str(path))
        if any(n.kind != kind for n in nodes):
            raise TmdlError(f"{path}: only {kind} objects expected")
        return nodes

    (database,) = one(definition / "database.tmdl", "database")
    (model,) = one(definition / "model.tmdl", "model")
    tables = {}
    for path in sorted((definition / "tables").glob("*.tmdl")):
        (table,) = one(path, "table")
        if path.stem != table.name:
            raise TmdlError(f"{path}: holds table {table.name!r}")
        tables[table.name] = table
    for table in tables.values():
        for column in table.child("column"):
            if column.properties.get("dataType") not in DATA_TYPES:
                raise TmdlError(f"{table.name}.{column.name}: dataType")
    relationships = one(definition / "relationships.tmdl", "relationship")
    expressions = {n.name: n for n in one(definition / "expressions.tmdl", "expression")}
    if {name for kind, name in model.refs if kind == "table"} != set(tables):
        raise TmdlError("model.tmdl does not list exactly the tables of tables/")
    return Model(database, model, tables, relationships, expressions)
