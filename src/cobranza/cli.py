"""The `cobranza` command line: each command parses, calls one function of its layer, prints.

The commands of the stages (ingest, etl, train, score, impact, pipeline, monitor, experiment
report, lake prune) are built from `cobranza.stages`; the others are written here. Heavy layers (Spark, MLflow, LightGBM,
the API) are imported inside the commands that use them, so `--help` stays instant.
"""

from __future__ import annotations

import errno
import getpass
import inspect
import os
import re
import sys
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from cobranza.config import Settings, load_settings
from cobranza.console import ui
from cobranza.errors import CobranzaError, first_line
from cobranza.stages import STAGES, Stage, cli_meta, option_name
from cobranza.summary import Summary

KEYWORD = inspect.Parameter.KEYWORD_ONLY

app = typer.Typer(
    name="cobranza",
    help="Early-delinquency self-cure through the recurring debit: simulate, ingest, ETL, train, "
    "score, serve. The global options (--lake, --json, --quiet) go before or after the command.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="API keys of the control plane (stored hashed).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
lake_app = typer.Typer(
    help="Versions of the lake's zones and their retention.", no_args_is_help=True
)
app.add_typer(lake_app, name="lake")

_state: dict[str, Any] = {}

LakeOpt = Annotated[
    Path | None, typer.Option("--lake", help="Lake folder [env COBRANZA_LAKE, default ./lake].")
]


@app.callback()
def main(
    lake: LakeOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no summary.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout.")
    ] = False,
) -> None:
    ui.quiet, ui.json = quiet, json_out
    _state["lake"] = lake


def settings(**overrides: Any) -> Settings:
    return load_settings(lake=_state.get("lake"), **overrides)


def _run(title: str, fn, *args, hold_lake: Path | None = None, check_catalog=True, **kwargs) -> Any:
    """Call a layer function; known, actionable errors become one clear line and exit code 1.

    With `hold_lake`, the lake's in-use lock is held shared for the whole call (the command reads
    versions: `cobranza lake prune` refuses meanwhile), and a catalog left stale by an earlier
    failed refresh is refreshed first (`check_catalog`).
    The result is printed as JSON under `--json`; else a stage's result by its own short tables
    when it has them (`Summary.sections`), and any other as a flat summary table.
    """
    try:
        with _using_lake(hold_lake, check_catalog) if hold_lake is not None else nullcontext():
            result = fn(*args, **kwargs)
    except CobranzaError as exc:
        ui.error(str(exc))
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        ui.error(f"{title} interrupted; nothing was published by the unfinished step")
        raise typer.Exit(130) from None
    except Exception as exc:
        storage = _storage_problem(exc)
        if storage is not None:  # the machine, not a defect: say what and where
            ui.error(storage)
            raise typer.Exit(1) from None
        # A defect, not bad input: one line by default, the traceback on demand for whoever fixes it.
        if os.environ.get("COBRANZA_DEBUG"):
            raise
        ui.error(
            f"{title} failed unexpectedly ({type(exc).__name__}: {first_line(exc)}); nothing was "
            "published by the failing step. Run again with COBRANZA_DEBUG=1 for the traceback."
        )
        raise typer.Exit(2) from None
    if isinstance(result, Summary):
        sections = None if ui.json else result.sections()
        if sections:
            ui.report(title, sections)
        else:
            ui.summary(title, result.to_json())
    elif isinstance(result, dict):
        ui.summary(title, result)
    return result


@contextmanager
def _using_lake(root: Path, check_catalog: bool):
    """The lake's in-use lock (shared) for a command reading versions; a stale catalog refreshed."""
    from cobranza.lake import Lake  # pyarrow and DuckDB: not for `--help`
    from cobranza.lake.catalog import refresh_if_stale

    lake = Lake(root)
    with lake.in_use(
        on_wait=lambda: ui.info(f"waiting for `cobranza lake prune` to finish on {lake.root}")
    ):
        if check_catalog:
            lake.recover()  # first: a refresh must not record the pair a dead etl left half-done
            refresh_if_stale(lake)
        yield


_STORAGE_ERRNO = {
    errno.ENOSPC: "no space left on device while writing {path}",
    errno.EDQUOT: "disk quota exceeded while writing {path}",
    errno.EROFS: "read-only file system: cannot write {path}",
    errno.EACCES: "permission denied on {path}",
}
_STORAGE_TEXT = (
    ("no space left on device", errno.ENOSPC),
    ("database or disk is full", errno.ENOSPC),
    ("disk quota exceeded", errno.EDQUOT),
    ("read-only file system", errno.EROFS),
)
_QUOTED_PATH = re.compile(r"""["'](/[^"']+)["']""")


def _storage_problem(exc: BaseException) -> str | None:
    """A full, over-quota, read-only or forbidden disk as one line (None: something else).

    An OSError anywhere in the exception's chain, or an engine error (DuckDB, pyarrow, SQLite)
    whose text says so; the path is the file's when known, else the lake's.
    """
    seen: set[int] = set()
    err: BaseException | None = exc
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        code, path = None, None
        if isinstance(err, OSError) and err.errno in _STORAGE_ERRNO:
            code, path = err.errno, err.filename
        else:
            text = str(err)
            code = next((c for needle, c in _STORAGE_TEXT if needle in text.lower()), None)
            match = _QUOTED_PATH.search(text)
            path = match.group(1) if match else None
        if code is not None:
            if path is None:
                try:
                    path = settings().lake
                except Exception:
                    path = "the lake"
            return _STORAGE_ERRNO[code].format(path=path) + "; nothing was published"
        err = err.__cause__ or err.__context__
    return None


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the extract into.")] = Path(
        "extract"
    ),
    clients: Annotated[int, typer.Option(min=1, help="Number of clients.")] = 100_000,
    months: Annotated[int, typer.Option(min=4, max=120, help="Months of history.")] = 24,
    seed: Annotated[
        int, typer.Option(help="Random seed; same arguments give byte-identical files.")
    ] = 42,
    dialect: Annotated[str, typer.Option(help="standard or bank-latin1.")] = "standard",
    drift: Annotated[
        bool, typer.Option("--drift", help="Income shock in the last months (= income_shock).")
    ] = False,
    noise: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Rate of injected bad-input cases.")
    ] = 0.002,
    end: Annotated[str | None, typer.Option(help="Last month-end cut date (YYYY-MM-DD).")] = None,
    scenario: Annotated[
        str,
        typer.Option(
            help="baseline, income_shock, mandate_churn, bank_migration, fee_hike or "
            "collections_strike (docs/simulator.md)."
        ),
    ] = "baseline",
    holdout_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of early-delinquent rows held out.")
    ] = 0.10,
    holdout_months: Annotated[
        int, typer.Option(min=0, help="The holdout runs over the last N labeled cuts.")
    ] = 6,
    legacy_rule: Annotated[
        bool,
        typer.Option(
            "--legacy-rule", help="The bank's old rule: 1-7 days past due with a mandate is RULE."
        ),
    ] = False,
    contamination: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Share of HOLDOUT/RULE rows managed all the same."),
    ] = 0.03,
    compress: Annotated[
        bool, typer.Option("--compress", help="Write every file as NAME.csv.gz.")
    ] = False,
    without: Annotated[
        list[str] | None,
        typer.Option(
            help="Switch a realism item off (repeatable): holidays, fees, reversals, "
            "shared_funds, seasonality, card_minimums, mandate_stops."
        ),
    ] = None,
) -> None:
    """Write a synthetic bank extract (contract version 2: ten files, manifest, truth in _truth/)."""
    from cobranza.contract import load_dialect
    from cobranza.simulate import SimulationConfig
    from cobranza.simulate import simulate as run_simulation

    def run() -> dict:
        cfg = SimulationConfig(
            clients=clients,
            months=months,
            seed=seed,
            drift=drift,
            noise=noise,
            end=date.fromisoformat(end) if end else None,
            scenario=scenario,
            holdout_share=holdout_share,
            holdout_months=holdout_months,
            legacy_rule=legacy_rule,
            contamination=contamination,
            compress=compress,
            without=frozenset(without or ()),
        )
        return run_simulation(out, cfg, dialect=load_dialect(dialect), ui=ui)

    # Built and loaded inside _run: a bad dialect or scenario is one clear line, not a traceback.
    _run("simulate", run)


# ---- the stages of cobranza.stages: one command each, options from the stage's parameters ------
def _option_type(annotation: Any) -> tuple[Any, dict[str, Any]]:
    """A parameter's type as Typer reads it: a date is read as YYYY-MM-DD."""
    if annotation in (date, date | None):
        read_as = datetime if annotation is date else datetime | None
        return read_as, {"formats": ["%Y-%m-%d"]}
    return annotation, {}


def _stage_parameters(stage: Stage) -> list[inspect.Parameter]:
    """The command's parameters: one per field of the stage's `Params`, then its `cli_settings`."""
    out = []
    for name, info in stage.params.model_fields.items():
        meta = cli_meta(stage.params, name)
        annotation, extra = _option_type(meta.type or info.annotation)
        default = ... if info.is_required() else info.default
        text = meta.help or info.description
        if meta.min is not None:
            extra["min"] = meta.min
        if meta.argument:
            spec = typer.Argument(default, help=text, **extra)
        else:
            spec = typer.Option(default, option_name(name), help=text, **extra)
        out.append(inspect.Parameter(name, KEYWORD, default=spec, annotation=annotation))
    for cs in stage.cli_settings:
        spec = typer.Option(None, option_name(cs.setting), help=cs.help)
        out.append(inspect.Parameter(cs.setting, KEYWORD, default=spec, annotation=cs.type))
    return out


def _stage_command(stage: Stage) -> Callable[..., None]:
    """The command of a stage: parameters to `Params`, settings, the stage's function, print."""

    def command(**values: Any) -> None:
        fields = {
            name: values[name].date() if isinstance(values[name], datetime) else values[name]
            for name in stage.params.model_fields
        }
        params = stage.params.model_construct(**fields)
        overrides = params.settings_overrides()
        overrides.update({cs.setting: values[cs.setting] for cs in stage.cli_settings})
        s = settings(**overrides)
        _run(
            stage.title,
            lambda: stage.runner()(s, params, ui),
            hold_lake=s.lake if stage.holds_lake else None,
        )

    parameters = _stage_parameters(stage)
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__name__ = stage.name
    command.__doc__ = stage.help
    return command


def _add_stage_commands() -> None:
    groups = {"lake": lake_app}
    for stage in STAGES:
        *group, name = stage.words
        if group and group[0] not in groups:  # a group of stage commands only (`experiment`)
            groups[group[0]] = typer.Typer(help=stage.help, no_args_is_help=True)
            app.add_typer(groups[group[0]], name=group[0])
        target = groups[group[0]] if group else app
        target.command(name, help=stage.help)(_stage_command(stage))


_add_stage_commands()


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="Registered model version to make champion.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why, for the record.")
    ] = "manual promotion",
    who: Annotated[str | None, typer.Option(help="Who promotes; default the OS user.")] = None,
) -> None:
    """Move the champion alias to a version by hand; records who and why."""
    from cobranza.ml.registry import promote as do_promote

    _run("promote", do_promote, settings(), version, who=who or getpass.getuser(), reason=reason)


@app.command()
def models() -> None:
    """List registered model versions with aliases, gate results and out-of-time metrics."""
    from cobranza.ml.registry import list_models

    rows = _run("models", list_models, settings())
    ui.summary("models", {"models": rows} if ui.json else {r["version"]: r for r in rows})


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
) -> None:
    """Run the control plane API (FastAPI on uvicorn)."""
    from cobranza.api import serve as run_server

    run_server(settings(), host=host, port=port)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="viewer, operator or admin.")] = "viewer",
    name: Annotated[str, typer.Option(help="Who or what the key is for.")] = "unnamed",
) -> None:
    """Create an API key; the key is shown once and stored only as a hash."""
    from cobranza.api.keys import create_key

    _run("key", create_key, settings(), role=role, name=name)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (id, name, role, created, revoked); the keys themselves are never stored."""
    from cobranza.api.keys import list_keys_cli

    rows = _run("keys", list_keys_cli, settings())
    ui.rows("API keys", rows, empty="none yet; `cobranza keys create --role admin --name ...`")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (`cobranza keys list`).")],
) -> None:
    """Revoke an API key at once (the service refuses it on its next request)."""
    from cobranza.api.keys import revoke_key_cli

    _run("key revoked", revoke_key_cli, settings(), key_id)


@lake_app.command("versions")
def lake_versions(
    zone: Annotated[
        str | None, typer.Option(help="Only this zone (raw, silver, gold, results).")
    ] = None,
) -> None:
    """Every version of every zone: current, complete, pruned, being written or orphaned, with size."""
    from cobranza.lake import Lake
    from cobranza.lake.retention import list_versions

    rows = _run("lake versions", lambda: list_versions(Lake(settings().lake).ensure()))
    if zone is not None:
        rows = [r for r in rows if r["zone"] == zone]
    problems = [r.get("problem") for r in rows if r.get("problem")]
    if not ui.json:
        rows = [{k: v for k, v in r.items() if k != "problem"} for r in rows]
    ui.rows("lake versions", rows, empty="no version published yet")
    if not ui.json:
        for problem in problems:
            ui.info(f"[yellow]warning:[/] {problem}")


@lake_app.command("use")
def lake_use(
    zone: Annotated[str, typer.Argument(help="raw, silver, gold or results.")],
    version: Annotated[str, typer.Argument(help="A complete version (`cobranza lake versions`).")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the record.")] = None,
    who: Annotated[str | None, typer.Option(help="Who; default the OS user.")] = None,
) -> None:
    """Point a zone at one of its complete, unpruned versions (the repair for a broken or lost
    CURRENT, or a way back); recorded in ml_metadata.lake_pointer_events."""
    from cobranza.lake import Lake
    from cobranza.lake.repair import use_version

    s = settings()

    def point() -> dict[str, Any]:
        lake = Lake(s.lake).ensure()
        return use_version(lake, zone, version, who=who or getpass.getuser(), reason=reason)

    _run("lake use", point, hold_lake=s.lake, check_catalog=False)


@app.command()
def catalog() -> None:
    """Rebuild the DuckDB catalog's views from the current lake pointers."""
    from cobranza.lake import Lake, refresh_catalog

    s = settings()

    def rebuild() -> dict[str, Any]:
        lake = Lake(s.lake).ensure()
        refresh_catalog(lake, strict=True)
        return {"catalog": str(lake.catalog_path), "refreshed": True}

    _run("catalog", rebuild, hold_lake=s.lake, check_catalog=False)


@app.command()
def docs(
    out: Annotated[Path, typer.Option(help="Docs folder.")] = Path("docs"),
) -> None:
    """Regenerate docs/contract.md and docs/features.md from the code."""
    from cobranza.docs import write_docs

    _run("docs", write_docs, out)


GLOBAL_FLAGS = ("--json", "--quiet", "-q")


def hoist_global_options(argv: list[str]) -> list[str]:
    """Global options anywhere on the line: `cobranza ingest DIR --json` is `cobranza --json
    ingest DIR` (Typer only reads them before the command)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        if arg in GLOBAL_FLAGS or arg.startswith("--lake="):
            front.append(arg)
        elif arg == "--lake" and i + 1 < len(argv):
            front += argv[i : i + 2]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def entry() -> None:
    """The `cobranza` command (and `python -m cobranza.cli`)."""
    app(args=hoist_global_options(sys.argv[1:]), prog_name="cobranza")


if __name__ == "__main__":
    entry()
