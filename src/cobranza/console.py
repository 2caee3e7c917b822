"""Terminal output shared by every command: rich progress, a closing summary, `--quiet` and `--json`.

Progress and human text go to stderr, so `--json` leaves stdout a single JSON document for machines.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


@dataclass
class UI:
    quiet: bool = False
    json: bool = False

    @property
    def err(self) -> Console:
        return Console(stderr=True, quiet=self.quiet or self.json)

    @contextmanager
    def progress(self, description: str, total: float | None = None) -> Iterator[Step]:
        """A progress bar; `step.advance(n)` and `step.update(description=...)` move it."""
        if self.quiet or self.json or not sys.stderr.isatty():
            yield Step(None, None, self if not (self.quiet or self.json) else None, description)
            return
        columns = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ]
        with Progress(*columns, console=self.err, transient=False) as prog:
            task = prog.add_task(description, total=total)
            yield Step(prog, task, None, description)

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        """A spinner while something runs that has nothing to count (the champion loading);
        off a terminal, the message once."""
        if self.quiet or self.json:
            yield
        elif not sys.stderr.isatty():
            self.info(message)
            yield
        else:
            with self.err.status(message):
                yield

    def info(self, message: str) -> None:
        self.err.print(message)

    def summary(self, title: str, data: dict[str, Any]) -> None:
        if self.json:
            sys.stdout.write(json.dumps(data, indent=2, default=str, sort_keys=False) + "\n")
            return
        if self.quiet:
            return
        table = Table(title=title, show_header=False, title_justify="left")
        for key, value in _flatten(data):
            table.add_row(key, _fmt(value))
        Console(width=None if sys.stdout.isatty() else 160).print(table)

    def rows(self, title: str, rows: list[dict[str, Any]], empty: str = "none") -> None:
        """A list of records: one JSON array under `--json`, else a table with a header row."""
        if self.json:
            sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
            return
        if self.quiet:
            return
        if not rows:
            self.info(f"{title}: {empty}")
            return
        table = Table(title=title, title_justify="left")
        columns = list(dict.fromkeys(k for r in rows for k in r))
        for col in columns:
            table.add_column(col)
        for r in rows:
            table.add_row(*("" if r.get(c) is None else _fmt(r.get(c)) for c in columns))
        # piped to a file or a pager, a table of ids reads better whole than cut at 80 columns
        Console(width=None if sys.stdout.isatty() else 200).print(table)

    def report(self, title: str, sections: list[tuple[str, list[str] | None, list[tuple]]]) -> None:
        """Short titled tables (heading, optional column names, rows of text) for people."""
        if self.quiet or self.json:
            return
        console = Console(width=None if sys.stdout.isatty() else 120)
        console.print(f"[bold]{title}[/]")
        for heading, columns, rows in sections:
            if not rows:
                console.print(heading)
                continue
            table = Table(title=heading, title_justify="left", show_header=columns is not None)
            width = max((len(r) for r in rows), default=1)
            for i, col in enumerate(columns or [""] * width):
                cells = [str(r[i]) for r in rows if i < len(r)]
                numeric = i > 0 and all(_NUMERIC.match(c) for c in cells)
                table.add_column(col, justify="right" if numeric else "left", overflow="fold")
            for row in rows:
                table.add_row(*row)
            console.print(table)

    def error(self, message: str) -> None:
        if self.json:
            sys.stdout.write(json.dumps({"error": message}) + "\n")
        # one line whatever the terminal's width: scripts and people grep it
        Console(stderr=True).print(
            f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True
        )


@dataclass
class Step:
    prog: Progress | None
    task: Any
    plain: UI | None
    description: str

    def advance(self, n: float = 1) -> None:
        if self.prog is not None:
            self.prog.advance(self.task, n)

    def update(self, description: str | None = None, total: float | None = None) -> None:
        if self.prog is not None:
            self.prog.update(self.task, description=description, total=total)
        elif self.plain is not None and description:
            self.plain.info(f"  {description}")


_NUMERIC = re.compile(r"^(COP )?[-+]?[\d,]*\.?\d*%?( .*)?$|^-?$")


def _flatten(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and len(value) <= 40:
            yield from _flatten(value, name + ".")
        else:
            yield name, value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def waiting(ui: UI | None, message: str) -> AbstractContextManager[None]:
    """`ui.status(message)`, or nothing for a caller without a terminal UI (tests, the API)."""
    return ui.status(message) if ui is not None else nullcontext()


ui = UI()
