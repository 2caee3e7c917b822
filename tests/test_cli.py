"""The command line: every command answers --help, global options anywhere, and bad input (an
option, an argument, a `COBRANZA_*` variable, the TOML file, a lake folder) is one line naming it
and a non-zero exit, never a traceback."""

import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import UnionType

import pytest

from cobranza.cli import app
from cobranza.stages import STAGES, option_name

COMMANDS = sorted(
    [c.name or c.callback.__name__ for c in app.registered_commands]
    + [
        f"{g.name} {c.name}"
        for g in app.registered_groups
        for c in g.typer_instance.registered_commands
    ]
)


def test_commands_are_the_documented_ones():
    for name in (
        "simulate",
        "ingest",
        "etl",
        "train",
        "promote",
        "models",
        "score",
        "impact",
        "serve",
        "pipeline",
        "keys create",
        "keys list",
        "keys revoke",
        "lake versions",
        "lake prune",
        "lake use",
        "experiment report",
    ):
        assert name in COMMANDS


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help(command):
    out = subprocess.run(
        ["cobranza", *command.split(), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_lake_option_is_global(tmp_path):
    (tmp_path / "lk").mkdir()  # catalog reads a lake: it never creates one
    out = subprocess.run(
        ["cobranza", "--lake", str(tmp_path / "lk"), "--json", "catalog"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "lk" / "catalog.duckdb").exists()
    assert str(tmp_path / "lk") in out.stdout


def test_unexpected_error_is_one_line_without_traceback(tmp_path):
    # a Parquet file that is not one is an unexpected failure: one line, exit code 2 (a broken
    # pointer or record is an actionable error naming the file: see below)
    from cobranza.lake import Lake

    lake = tmp_path / "lk"
    with Lake(lake).ensure().publish("gold", refresh=False) as pub:
        part = pub.table_dir("obligation_snapshots") / "part-0.parquet"
        part.write_bytes(b"PAR1 not a parquet file PAR1")
        pub.record("obligation_snapshots", rows=5)
    out = subprocess.run(
        ["cobranza", "--lake", str(lake), "train"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr + out.stdout
    assert "COBRANZA_DEBUG=1" in out.stderr


def test_global_options_may_follow_the_command(tmp_path):
    """`cobranza ingest DIR --json` and `--lake` anywhere on the line."""
    import json

    (tmp_path / "lk").mkdir()
    out = subprocess.run(
        ["cobranza", "catalog", "--json", "--lake", str(tmp_path / "lk")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["catalog"] == str(tmp_path / "lk" / "catalog.duckdb")


def test_hoisting_keeps_everything_else_in_place():
    from cobranza.cli import hoist_global_options

    assert hoist_global_options(["ingest", "x", "--json", "--dialect", "bank-latin1"]) == [
        "--json",
        "ingest",
        "x",
        "--dialect",
        "bank-latin1",
    ]
    assert hoist_global_options(["score", "--lake=/l", "-q", "--", "--json"]) == [
        "--lake=/l",
        "-q",
        "score",
        "--",
        "--json",
    ]
    assert hoist_global_options(["--lake", "/l", "etl"]) == ["--lake", "/l", "etl"]


WIDE = {**os.environ, "COLUMNS": "1000"}  # rich wraps error lines at the terminal width


def _cobranza(lake, *args, timeout=120):
    return subprocess.run(
        ["cobranza", "--lake", str(lake), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=WIDE,
    )


def _small_lake(root):
    """Two generations of raw -> silver + gold, published as ingest and etl do."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cobranza.lake import Lake

    lake = Lake(root).ensure()
    gens = []
    for i in range(2):
        with lake.publish("raw") as raw:
            pq.write_table(pa.table({"x": [i]}), raw.table_dir("clients") / "p.parquet")
        with lake.transaction() as tx:
            with tx.publish("silver", inputs={"raw": raw.version}) as s:
                pq.write_table(pa.table({"x": [i]}), s.table_dir("clients") / "p.parquet")
            with tx.publish("gold", inputs={"silver": s.version}) as g:
                pq.write_table(
                    pa.table({"x": [i]}), g.table_dir("obligation_snapshots") / "p.parquet"
                )
        gens.append({"silver": s.version, "gold": g.version})
    return lake, gens


def test_a_broken_pointer_is_one_message_naming_the_file_and_the_fix(tmp_path):
    """Every command reading the zone says which file is broken and how to repair it."""
    lake, gens = _small_lake(tmp_path / "lk")
    pointer = lake.root / "gold" / "CURRENT"
    pointer.write_text("garbage{")
    for command in (["catalog"], ["train"], ["score"], ["lake", "prune"]):
        out = _cobranza(lake.root, *command)
        text = " ".join(out.stderr.split())
        assert out.returncode == 1, (command, out.stderr)
        assert "Traceback" not in out.stderr + out.stdout
        assert f"{pointer} is broken" in text, (command, text)
        assert "cobranza lake use gold VERSION" in text, (command, text)
    assert pointer.read_text() == "garbage{"  # nothing wrote over it

    out = _cobranza(lake.root, "--json", "lake", "versions")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["state"] for r in rows if r["zone"] == "gold" and r["current"]] == ["pointer broken"]
    assert {r["version"] for r in rows if r["state"] == "complete"} >= {gens[1]["gold"]}

    out = _cobranza(lake.root, "lake", "use", "gold", gens[1]["gold"], "--reason", "repair")
    assert out.returncode == 0, out.stderr
    assert lake.current_version("gold") == gens[1]["gold"]
    assert "warning" not in out.stderr.lower()  # gold and silver come from each other again
    out = _cobranza(lake.root, "--json", "catalog")
    assert out.returncode == 0 and json.loads(out.stdout)["refreshed"] is True, out.stderr


@contextmanager
def _mounted(target, *options):
    """A real mount for the duration of the test (root only: skipped elsewhere)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a file system")
    done = subprocess.run(["mount", *options, str(target)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.decode().strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_a_read_only_lake_says_read_only_and_fails(tmp_path):
    lake, _ = _small_lake(tmp_path / "lk")
    with _mounted(lake.root, "--bind", "-o", "ro", str(lake.root)):
        assert not os.access(lake.root, os.W_OK)
        out = _cobranza(lake.root, "catalog")
        text = " ".join(out.stderr.split())
        assert out.returncode == 1, out.stderr
        assert "read-only" in text and "locked by another process" not in text
        for command in (["etl"], ["lake", "use", "gold", lake.current_version("gold")]):
            out = _cobranza(lake.root, *command)
            assert out.returncode == 1, (command, out.stderr)
            assert "Traceback" not in out.stderr and "failed unexpectedly" not in out.stderr
            assert "read-only" in out.stderr.lower(), (command, out.stderr)
        out = _cobranza(lake.root, "--json", "lake", "versions")  # reading still works
        assert out.returncode == 0, out.stderr


def test_a_full_disk_is_one_clear_line(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    with _mounted(disk, "-t", "tmpfs", "-o", "size=8m", "tmpfs"):
        lake, gens = _small_lake(disk / "lk")
        before = lake.current_version("gold")
        with open(disk / "filler", "wb") as fh:  # fill what is left
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        out = _cobranza(lake.root, "lake", "use", "gold", gens[0]["gold"])
        text = " ".join(out.stderr.split())
        assert out.returncode == 1, out.stderr
        assert "error: no space left on device while writing " + str(lake.root) in text
        assert text.endswith("nothing was published")
        assert "failed unexpectedly" not in text
        assert lake.current_version("gold") == before


# ---- bad input on every command: one line naming it, a non-zero exit, never a traceback --------
def _walk(command=None, words=()):
    """(words, click command) of every command of the app, groups included recursively."""
    import typer

    command = command or typer.main.get_command(app)
    if hasattr(command, "commands"):
        for name, sub in sorted(command.commands.items()):
            yield from _walk(sub, (*words, name))
    else:
        yield words, command


ALL = list(_walk())
STAGE_WORDS = {s.words: s for s in STAGES}
# options of commands that are not stages whose value must be one of a few names
NAMED_VALUES = {
    ("simulate",): ("--scenario", "--dialect", "--without"),
    ("keys", "create"): ("--role",),
    ("lake", "versions"): ("--zone",),
    ("lake", "use"): ("zone",),
}
# commands that never read settings nor a lake (the extract simulator, the generated docs)
NO_SETTINGS = {("simulate",), ("docs",)}
# commands that may start a new lake: the writing stages, and serving or keying a new service
CREATE_LAKE = {s.words for s in STAGE_WORDS.values() if s.creates_lake} | {
    ("serve",),
    ("keys", "create"),
}


def _kind(param) -> type:
    """The type a parameter reads (None removed from an optional one)."""
    import typing

    annotation = param.type_descriptor.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if typing.get_origin(annotation) in (typing.Union, UnionType) else annotation


def _filled(command, tmp_path) -> list[str]:
    """Valid stand-ins for a command's required arguments (an extract folder that exists)."""
    out = []
    for p in command.params:
        if p.param_type_name == "argument" and p.required:
            out.append(str(tmp_path) if _kind(p) is Path else VALID.get(p.name, "x"))
    return out


VALID = {"zone": "gold"}  # arguments whose stand-in must be one of a few names


def _named_value_options(words, command) -> set[str]:
    stage = STAGE_WORDS.get(words)
    if stage is None:
        return set(NAMED_VALUES.get(words, ()))
    import typing

    out = set()
    for name, info in stage.params.model_fields.items():
        kinds = [info.annotation, *typing.get_args(info.annotation)]
        if any(typing.get_origin(k) is typing.Literal for k in kinds):
            out.add(option_name(name))
    return out | {option_name(co.name) for co in stage.cli_options}


def _bad_cases():
    """(words, option, bad value) for every option and argument whose values can be wrong."""
    cases = []
    for words, command in ALL:
        named = _named_value_options(words, command)
        for p in command.params:
            kind = _kind(p)
            flag = p.opts[0] if p.param_type_name == "option" else p.name
            if kind is datetime:
                cases.append((words, flag, "2024-13-01"))
            elif kind in (int, float):
                cases.append((words, flag, "notanumber"))
                low = getattr(p, "min", None)
                if low is not None:
                    cases.append((words, flag, str(low - 1)))
            elif flag in named or p.name in named:
                cases.append((words, flag, "bogus"))
    return cases


BAD = _bad_cases()


def _invoke(argv, capsys):
    from cobranza.cli import run

    code = run([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def test_the_bad_inputs_cover_every_stage_and_each_kind():
    """The cases below reach every stage's command and dates, numbers and named values."""
    titles = {w for w, _ in ALL}
    assert set(STAGE_WORDS) <= titles
    values = {v for _, _, v in BAD}
    assert {"2024-13-01", "notanumber", "bogus"} <= values
    assert any(w == ("score",) and f == "--as-of" for w, f, _ in BAD)
    assert any(w == ("etl",) and f == "--engine" for w, f, _ in BAD)
    assert any(w == ("monitor",) and f == "--fail-on" for w, f, _ in BAD)


@pytest.mark.parametrize(("words", "flag", "value"), BAD, ids=lambda x: str(x))
def test_a_bad_value_is_one_line_naming_the_input(words, flag, value, tmp_path, capsys):
    lake = tmp_path / "lake"
    lake.mkdir()
    command = dict(ALL)[words]
    args = _filled(command, tmp_path)
    if flag.startswith("--"):
        if words == ("simulate",):  # small, should the bad value not stop it (the last one wins)
            args += ["--out", tmp_path / "sim", "--clients", "50", "--months", "4"]
        argv = ["--lake", lake, *words, *args, flag, value]
    else:  # a positional argument: the bad value in its place
        names = [p.name for p in command.params if p.param_type_name == "argument"]
        args[names.index(flag)] = value
        argv = ["--lake", lake, *words, *args]
    code, out, err = _invoke(argv, capsys)
    assert code != 0, (argv, out, err)
    assert "Traceback" not in out + err
    line = _one_error_line(err)
    assert flag in line or flag.upper() in line or repr(value) in line, line


SETTING_CASES = [w for w, _ in ALL if w not in NO_SETTINGS]


@pytest.mark.parametrize("words", SETTING_CASES, ids=" ".join)
@pytest.mark.parametrize(
    ("variable", "content", "named"),
    [
        ("COBRANZA_ENGINE", "foo", "COBRANZA_ENGINE = 'foo'"),
        ("COBRANZA_HORIZON_DAYS", "abc", "COBRANZA_HORIZON_DAYS"),
        ("COBRANZA_CONFIG", "lake = [\n", "not valid TOML"),
    ],
    ids=["enum", "number", "toml"],
)
def test_a_bad_setting_is_one_line_naming_its_variable_or_file(
    words, variable, content, named, tmp_path, capsys, monkeypatch
):
    if variable == "COBRANZA_CONFIG":
        toml = tmp_path / "cobranza.toml"
        toml.write_text(content)
        content = str(toml)
    monkeypatch.setenv(variable, content)
    (tmp_path / "lake").mkdir()
    command = dict(ALL)[words]
    code, out, err = _invoke(
        ["--lake", tmp_path / "lake", *words, *_filled(command, tmp_path)], capsys
    )
    assert code == 1, (out, err)
    assert "Traceback" not in out + err
    assert named in _one_error_line(err)


READERS = [w for w, _ in ALL if w not in NO_SETTINGS | CREATE_LAKE]


def test_the_commands_that_only_read_a_lake_are_the_expected_ones():
    assert {("models",), ("score",), ("monitor",), ("impact",), ("catalog",)} <= set(READERS)
    assert {("lake", "versions"), ("quarantine",), ("train",), ("etl",)} <= set(READERS)
    assert ("ingest",) not in READERS and ("pipeline",) not in READERS


@pytest.mark.parametrize("words", READERS, ids=" ".join)
def test_a_missing_lake_folder_is_refused_and_not_created(words, tmp_path, capsys):
    missing = tmp_path / "typo" / "lake"
    command = dict(ALL)[words]
    code, out, err = _invoke(["--lake", missing, *words, *_filled(command, tmp_path)], capsys)
    assert code == 1, (out, err)
    line = _one_error_line(err)
    assert f"no lake at {missing}" in line and "does not exist" in line
    assert "cobranza ingest" in line  # how to create one
    assert not missing.exists() and not missing.parent.exists()


def test_version_and_help_texts_keep_their_square_brackets(capsys):
    from cobranza import __version__

    out = subprocess.run(["cobranza", "--version"], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == f"cobranza {__version__}"
    wide = {**os.environ, "COLUMNS": "200"}
    for words, text in (
        ([], "[env COBRANZA_LAKE, default ./lake]"),
        (["etl"], "local[*]"),
        (["pipeline"], "[simulate →]"),
    ):
        out = subprocess.run(
            ["cobranza", *words, "--help"], capture_output=True, text=True, env=wide, check=False
        )
        assert text in out.stdout, out.stdout


def test_serve_on_a_busy_port_says_so_in_words(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = _cobranza(tmp_path / "lake", "serve", "--port", str(port), timeout=120)
    assert out.returncode == 1, out.stderr
    assert f"error: port {port} on 127.0.0.1 is already in use" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_lake_versions_of_one_zone(tmp_path):
    lake, gens = _small_lake(tmp_path / "lk")
    out = _cobranza(lake.root, "--json", "lake", "versions", "--zone", "gold")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert {r["zone"] for r in rows} == {"gold"}
    assert {g["gold"] for g in gens} <= {r["version"] for r in rows}
