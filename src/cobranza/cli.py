"""The `cobranza` command line: each command parses, calls one function of its layer, prints.

The commands of the stages (ingest, etl, train, score, impact, pipeline, monitor, experiment
report, lake prune) are built from `cobranza.stages`; the others are written here. Heavy layers (Spark, MLflow, LightGBM,
the API) are imported inside the commands that use them, so `--help` stays instant.

Every input (options, arguments, `COBRANZA_*` variables, the TOML file) is read inside `run`'s
error handler: a bad one is one line naming it and a non-zero exit, never a traceback. Exit codes:
0 done, 1 an input or state to fix (the message says what), 2 a command line Typer cannot parse or
an unexpected failure, 3 `monitor --fail-on` stopping at drift, 130 interrupted.
"""

from __future__ import annotations

import getpass
import inspect
import os
import sys
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from cobranza.config import ENV_PREFIX, Settings, load_settings
from cobranza.console import ui
from cobranza.errors import CobranzaError, first_line, storage_problem
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
    # markdown keeps square brackets ("[env COBRANZA_LAKE, default ./lake]"); rich markup eats them
    rich_markup_mode="markdown",
)
keys_app = typer.Typer(
    help="API keys of the control plane (stored hashed).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(keys_app, name="keys")
lake_app = typer.Typer(
    help="Versions of the lake's zones and their retention.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(lake_app, name="lake")

_state: dict[str, Any] = {}

LakeOpt = Annotated[
    Path | None, typer.Option("--lake", help="Lake folder [env COBRANZA_LAKE, default ./lake].")
]


def _print_version(value: bool) -> None:
    if value:
        from cobranza import __version__

        typer.echo(f"cobranza {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    lake: LakeOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no summary.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    ui.quiet, ui.json = quiet, json_out
    _state["lake"] = lake


def settings(origins: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """The command's settings; a bad value names its option (`origins`), variable or file."""
    return load_settings(
        {"lake": "--lake", **(origins or {})}, lake=_state.get("lake"), **overrides
    )


def existing_lake(s: Settings) -> Path:
    """The lake of a command that only reads or completes one: it must exist already, so a
    mistyped `--lake` is refused instead of becoming a new, empty lake."""
    root = s.lake
    if root.is_dir():
        return root
    if _state.get("lake") is not None:
        given = "--lake"
    elif any(name.upper() == ENV_PREFIX + "LAKE" for name in os.environ):
        given = "COBRANZA_LAKE"
    else:
        given = "the default ./lake (set --lake or COBRANZA_LAKE)"
    what = "is not a folder" if root.exists() else "does not exist"
    raise CobranzaError(
        f"no lake at {root} (from {given}): the folder {what}; a command that writes creates "
        "one: `cobranza ingest EXTRACT_DIR` or `cobranza pipeline`"
    )


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
        storage = storage_problem(exc, _lake_for_messages())
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


def _lake_for_messages() -> Path | str:
    try:
        return settings().lake
    except Exception:
        return "the lake"


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
    end: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Last month-end cut date (YYYY-MM-DD)."),
    ] = None,
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
    ] = 12,
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
            end=end.date() if end else None,
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
    for co in stage.cli_options:
        text = f"{co.help} One of {', '.join(co.choices)}."
        spec = typer.Option(co.default, option_name(co.name), help=text)
        out.append(inspect.Parameter(co.name, KEYWORD, default=spec, annotation=str))
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
        # a setting given by an option is named by that option in an error (`--horizon` sets
        # horizon_days: the option whose name starts the setting's)
        origins = {
            key: option_name(next((f for f in fields if key.startswith(f)), key))
            for key in overrides
        }
        s = settings(origins, **overrides)
        options = {co.name: values[co.name] for co in stage.cli_options}
        for co in stage.cli_options:
            if options[co.name] not in co.choices:
                raise CobranzaError(
                    f"{option_name(co.name)} {options[co.name]!r}: use one of "
                    + ", ".join(co.choices)
                )
        if not stage.creates_lake:
            existing_lake(s)
        result = _run(
            stage.title,
            lambda: stage.runner()(s, params, ui),
            hold_lake=s.lake if stage.holds_lake else None,
        )
        exit_coder = stage.exit_coder()
        code = exit_coder(result, **options) if exit_coder else 0
        if code:
            given = " ".join(f"{option_name(k)} {v}" for k, v in options.items())
            ui.info(f"{stage.title}: status {getattr(result, 'status', '?')} stops at {given}")
            raise typer.Exit(code)

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

    s = settings()
    existing_lake(s)
    _run("promote", do_promote, s, version, who=who or getpass.getuser(), reason=reason)


@app.command()
def models() -> None:
    """List registered model versions with aliases, gate results and out-of-time metrics."""
    from cobranza.ml.registry import list_models
    from cobranza.views import ModelList

    s = settings()
    existing_lake(s)
    _run("models", lambda: ModelList(list_models(s)))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
) -> None:
    """Run the control plane API (FastAPI on uvicorn). Exit code 1: the port is busy or the
    address cannot be used (the message says which); 3: the service failed to start."""
    from cobranza.listen import check_address

    s = settings()
    _run("serve", check_address, host, port)
    from cobranza.api.app import serve as run_server  # the API's imports: after the check

    run_server(s, host=host, port=port)


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

    s = settings()
    existing_lake(s)
    rows = _run("keys", list_keys_cli, s)
    ui.rows("API keys", rows, empty="none yet; `cobranza keys create --role admin --name ...`")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (`cobranza keys list`).")],
) -> None:
    """Revoke an API key at once (the service refuses it on its next request)."""
    from cobranza.api.keys import revoke_key_cli

    s = settings()
    existing_lake(s)
    _run("key revoked", revoke_key_cli, s, key_id)


@lake_app.command("versions")
def lake_versions(
    zone: Annotated[
        str | None, typer.Option(help="Only this zone (raw, silver, gold, results).")
    ] = None,
) -> None:
    """Every version of every zone: current, complete, pruned, being written or orphaned, with size."""
    from cobranza.lake import ZONES, Lake
    from cobranza.lake.retention import list_versions

    s = settings()
    if zone is not None and zone not in ZONES:
        raise CobranzaError(f"--zone {zone!r}: not a zone; zones are {', '.join(ZONES)}")
    existing_lake(s)
    rows = _run("lake versions", lambda: list_versions(Lake(s.lake).ensure()))
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
    from cobranza.lake import ZONES, Lake
    from cobranza.lake.repair import use_version

    s = settings()
    if zone not in ZONES:
        raise CobranzaError(f"ZONE {zone!r}: not a zone; zones are {', '.join(ZONES)}")
    existing_lake(s)

    def point() -> dict[str, Any]:
        lake = Lake(s.lake).ensure()
        return use_version(lake, zone, version, who=who or getpass.getuser(), reason=reason)

    _run("lake use", point, hold_lake=s.lake, check_catalog=False)


@app.command()
def quarantine(
    run: Annotated[
        str | None,
        typer.Argument(help="A raw version (`cobranza lake versions`); default the current."),
    ] = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print the report's CSV on stdout.")] = False,
) -> None:
    """What an ingest run quarantined, by file, column and reason, with the first lines (never a
    value); the HTML and CSV report of the run are in its raw version's `_quality/`."""
    from cobranza.ingest.quality import load_report, to_csv
    from cobranza.lake import Lake
    from cobranza.views import QuarantineView

    s = settings()
    existing_lake(s)
    if csv:  # the CSV instead of the tables or the JSON
        ui.quiet, ui.json = True, False
    view = _run("quarantine", lambda: QuarantineView(load_report(Lake(s.lake), run)))
    if csv:
        sys.stdout.buffer.write(to_csv(view.report))


@app.command()
def catalog() -> None:
    """Rebuild the DuckDB catalog's views from the current lake pointers."""
    from cobranza.lake import Lake, refresh_catalog

    s = settings()
    existing_lake(s)

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


def run(argv: list[str]) -> int:
    """Run the command line; every error becomes one line on stderr and an exit code."""
    try:
        result = app(args=hoist_global_options(argv), prog_name="cobranza", standalone_mode=False)
    except typer.Abort:
        ui.error("interrupted")
        return 130
    except CobranzaError as exc:  # an input read outside a layer's run: settings, --lake, --zone
        ui.error(str(exc))
        return 1
    except Exception as exc:
        if _usage_error(exc):  # an option or argument Typer could not parse (Click's errors)
            if type(exc).__name__ != "NoArgsIsHelpError":  # else the help was printed
                ctx = getattr(exc, "ctx", None)
                where = ctx.command_path if ctx is not None else "cobranza"
                ui.error(f"{exc.format_message()} (see `{where} --help`)")
            return exc.exit_code
        if os.environ.get("COBRANZA_DEBUG"):
            raise
        ui.error(
            f"cobranza failed unexpectedly ({type(exc).__name__}: {first_line(exc)}). Run again "
            "with COBRANZA_DEBUG=1 for the traceback."
        )
        return 2
    return result if isinstance(result, int) else 0


def _usage_error(exc: Exception) -> bool:
    """Click's errors (Typer bundles its own Click): they carry a message and an exit code."""
    return any(c.__name__ == "ClickException" for c in type(exc).__mro__)


def entry() -> None:
    """The `cobranza` command (and `python -m cobranza.cli`)."""
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    entry()
