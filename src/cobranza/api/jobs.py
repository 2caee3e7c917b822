"""Jobs: typed parameters per job type, their CLI arguments, and the worker processes that run them.

Each job is a subprocess `python -m cobranza.cli --lake <lake> --json <command> <args>` in its own
process group (never through a shell): its stdout JSON is the result summary, its stderr the log
tail. Cancel sends SIGTERM to the group, then SIGKILL after a grace period. Two jobs that write the
same zone never run at once: the conflict check and the insert share one write transaction. On
startup, jobs left queued or running by a previous service process are marked `interrupted` (and
their orphaned process group, if still alive, is stopped).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cobranza.api.control import ACTIVE, ControlDB, now_iso
from cobranza.config import Settings
from cobranza.errors import CobranzaError
from cobranza.lake import ZONES, Lake

log = logging.getLogger("cobranza.api.jobs")

REGISTRY = "registry"  # the MLflow model registry, written by train (and promote)
# monitor publishes no zone: it appends its own files to ml_metadata (atomic, one per run) and only
# reads current versions, so it locks nothing but itself (two monitors at once would be waste)
MONITORING = "monitoring"
# prune removes versions that any other job may be reading (train and score read gold, etl reads
# raw...): it holds the whole lake and runs alone
WHOLE_LAKE = "lake"
DEFAULT_EXTRACT = "extract"  # `cobranza pipeline`'s default --extract, relative to the working dir
JOB_TYPES = ("ingest", "etl", "train", "score", "pipeline", "monitor", "prune")
WRITES: dict[str, tuple[str, ...]] = {
    "ingest": ("raw",),
    "etl": ("silver", "gold"),
    "train": (REGISTRY,),
    "score": ("results",),
    "pipeline": ("raw", "silver", "gold", REGISTRY, "results"),
    "monitor": (MONITORING,),
    "prune": (WHOLE_LAKE,),
}


def conflicts(a: set[str], b: set[str]) -> bool:
    """Two jobs holding these resources may not run at once."""
    return bool(a & b) or WHOLE_LAKE in a or WHOLE_LAKE in b


LOG_TAIL_LINES = 40
REDACTED = "[redacted]"
# Shapes of personal data in free text (an ingest error may quote a data row). Alternatives are
# tried left to right at each position, so the `keep` shapes (lake version ids, dates) are consumed
# before a digit rule could mask part of them. Comma-grouped counts (12,104,152), decimals
# (0.8123) and short numbers match nothing and stay readable.
_PII = re.compile(
    r"(?P<keep>(?<!\w)(?:\d{8}T\d{6,}(?:-[0-9a-f]{8})?"  # version ids 20261201T080841985539-d87fc870
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?)(?!\w))"  # dates, timestamps
    r"|(?P<email>(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    r"|(?P<ident>(?<!\w)[A-Za-z]{1,3}\d{8,}(?!\w))"  # letter-prefixed ids: a bank client_id C00000000
    # digits in groups with one separator: documents 1.014.929.605, phones 328 219 8115 / 328-219-8115
    r"|(?P<grouped>(?<![\w.,])\d{1,4}(?P<sep>[. -])\d{2,7}(?:(?P=sep)\d{2,7}){0,4}(?![\w]|[.,]\d))"
    # 8+ digits, also before `,` or `.` (a CSV field, the end of a sentence); not a fraction's digits
    r"|(?P<digits>(?<!\w)(?<!\d\.)\d{8,}(?!\w))"
)
_MIN_GROUPED_DIGITS = 8


def _mask(match: re.Match) -> str:
    if match.group("keep"):
        return match.group(0)
    if match.group("grouped"):
        digits = sum(c.isdigit() for c in match.group(0))
        return REDACTED if digits >= _MIN_GROUPED_DIGITS else match.group(0)
    return REDACTED


# ---- parameters ----------------------------------------------------------------------------------
class PathProblem(ValueError):
    """A job's folder parameter that may not be used; `field` names it, the message never quotes it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


OUTSIDE_ROOTS = (
    "is outside the folders this service accepts extracts from (COBRANZA_API_EXTRACT_ROOTS)"
)


def _resolve(value: str) -> Path:
    """The absolute path with `..` and symlinks resolved, as the worker will use it."""
    return Path(value).resolve()


def within_roots(path: Path, roots: tuple[Path, ...] | None) -> bool:
    """No roots configured: any folder; else `path` (resolved) must be one of them or under one."""
    return roots is None or any(path == r or path.is_relative_to(r) for r in roots)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def cli_args(self) -> list[str]:
        raise NotImplementedError

    def check_paths(self, roots: tuple[Path, ...] | None) -> None:
        """Check the folders this job touches against the server's file system and the allowed
        roots; raise PathProblem. Run by the route, which knows the service's roots."""


def _no_nul(value: str | None) -> str | None:
    if value is not None and ("\x00" in value or not value.strip()):
        raise ValueError("must be a folder path")
    return value


Dialect = Literal["standard", "bank-latin1"]


class IngestParams(_Params):
    extract_dir: str = Field(
        ..., min_length=1, max_length=1000, description="Extract folder on the server."
    )
    dialect: Dialect = Field("standard", description="CSV dialect of the extract.")

    _check_dir = field_validator("extract_dir")(_no_nul)

    def check_paths(self, roots: tuple[Path, ...] | None) -> None:
        # the roots first: outside them, an existing and a missing folder get the same answer
        path = _resolve(self.extract_dir)
        if not within_roots(path, roots):
            raise PathProblem("extract_dir", OUTSIDE_ROOTS)
        if not path.is_dir():
            raise PathProblem("extract_dir", "is not an existing folder on the server")
        self.extract_dir = str(path)

    def cli_args(self) -> list[str]:
        return ["ingest", str(_resolve(self.extract_dir)), "--dialect", self.dialect]


class EtlParams(_Params):
    engine: Literal["duckdb", "spark"] | None = Field(None, description="Transform engine.")
    horizon: int | None = Field(None, ge=1, le=120, description="Target horizon in days.")

    def cli_args(self) -> list[str]:
        args = ["etl"]
        if self.engine:
            args += ["--engine", self.engine]
        if self.horizon is not None:
            args += ["--horizon", str(self.horizon)]
        return args


class TrainParams(_Params):
    tune: int | None = Field(None, ge=1, le=200, description="Optuna trials for LightGBM.")

    def cli_args(self) -> list[str]:
        return ["train"] + (["--tune", str(self.tune)] if self.tune else [])


class ScoreParams(_Params):
    as_of: date | None = Field(None, description="Cut date to score (default the latest).")

    def cli_args(self) -> list[str]:
        return ["score"] + (["--as-of", self.as_of.isoformat()] if self.as_of else [])


class PipelineParams(_Params):
    extract: str | None = Field(
        None, max_length=1000, description="Extract folder to ingest (or to simulate into)."
    )
    simulate_clients: int | None = Field(
        None, ge=50, le=200_000, description="Simulate an extract of this many clients first."
    )
    months: int = Field(24, ge=4, le=120, description="Months of simulated history.")
    dialect: Dialect = "standard"
    engine: Literal["duckdb", "spark"] | None = None
    seed: int = Field(42, ge=0, le=2**31 - 1)

    _check_extract = field_validator("extract")(_no_nul)

    def check_paths(self, roots: tuple[Path, ...] | None) -> None:
        """Ingesting: an existing folder. Simulating: a new or empty folder or an earlier simulator
        output (the simulator overwrites its files). Without `extract`, the CLI's default
        `extract` folder under the service's working directory, checked the same way."""
        path = _resolve(self.extract or DEFAULT_EXTRACT)
        if not within_roots(path, roots):
            raise PathProblem("extract", OUTSIDE_ROOTS)
        if path.exists() and not path.is_dir():
            raise PathProblem("extract", "exists on the server and is not a folder")
        if self.simulate_clients:
            from cobranza.simulate import check_output_folder

            try:
                check_output_folder(path)
            except CobranzaError:
                raise PathProblem(
                    "extract",
                    "is an existing folder that is not empty and is not an earlier simulator "
                    "output; to simulate, give a new or empty folder",
                ) from None
        elif not path.is_dir():
            raise PathProblem("extract", "is not an existing folder on the server")
        self.extract = str(path)

    def cli_args(self) -> list[str]:
        args = ["pipeline", "--months", str(self.months), "--dialect", self.dialect]
        args += ["--seed", str(self.seed)]
        if self.extract:
            args += ["--extract", str(Path(self.extract).resolve())]
        if self.simulate_clients:
            args += ["--simulate-clients", str(self.simulate_clients)]
        if self.engine:
            args += ["--engine", self.engine]
        return args


class MonitorParams(_Params):
    def cli_args(self) -> list[str]:
        return ["monitor"]


class PruneParams(_Params):
    keep: int = Field(3, ge=1, le=100, description="Newest complete versions kept per zone.")
    dry_run: bool = Field(False, description="Report what would be removed, remove nothing.")

    def cli_args(self) -> list[str]:
        return ["lake", "prune", "--keep", str(self.keep)] + (["--dry-run"] if self.dry_run else [])


class IngestJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["ingest"]
    params: IngestParams


class EtlJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["etl"]
    params: EtlParams = Field(default_factory=EtlParams)


class TrainJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["train"]
    params: TrainParams = Field(default_factory=TrainParams)


class ScoreJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["score"]
    params: ScoreParams = Field(default_factory=ScoreParams)


class PipelineJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["pipeline"]
    params: PipelineParams = Field(default_factory=PipelineParams)


class MonitorJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["monitor"]
    params: MonitorParams = Field(default_factory=MonitorParams)


class PruneJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["prune"]
    params: PruneParams = Field(default_factory=PruneParams)


JobRequest = Annotated[
    IngestJob | EtlJob | TrainJob | ScoreJob | PipelineJob | MonitorJob | PruneJob,
    Field(discriminator="type"),
]


# ---- the manager ---------------------------------------------------------------------------------
class JobConflict(Exception):
    def __init__(self, running: dict[str, Any]):
        super().__init__(f"job {running['job_id']} ({running['type']}) writes the same zone")
        self.running = running


def settings_env(settings: Settings) -> dict[str, str]:
    """The service's settings as COBRANZA_* variables, so a job sees exactly the same configuration."""
    env = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        key = f"COBRANZA_{name.upper()}"
        if name == "pseudonym_secret":
            env[key] = value.get_secret_value()
        elif isinstance(value, BaseModel):
            env[key] = value.model_dump_json()
        else:
            env[key] = str(value)
    return env


def redact(text: str) -> str:
    """Job output leaves the service (responses, webhooks, stored records): mask anything shaped
    like an e-mail, a document or phone number or a bank client id, keep ids, dates and counts."""
    return _PII.sub(_mask, text)


def redact_value(value: Any) -> Any:
    """`redact` over every string (keys too) of a JSON-like value; numbers are left as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


SCRUBBED_MARKER = ".redacted"  # in a job's folder once its stored output holds only masked text


def scrub_job_files(jdir: Path) -> None:
    """Rewrite a finished job's stdout.json and stderr.log through `redact` (atomic replace).

    The worker writes raw output while it runs (the service reads it only through `redact`); once
    it has ended nothing unmasked stays on disk. stdout.json is re-serialised from its parsed JSON
    so that numbers (counts) stay numbers.
    """
    if not jdir.is_dir() or (jdir / SCRUBBED_MARKER).exists():
        return
    stdout = jdir / "stdout.json"
    if stdout.is_file():
        text = stdout.read_text(encoding="utf-8", errors="replace")
        parsed = _parse_result(text)
        if parsed is None:
            clean = ""
        elif "unparsed_output" in parsed:
            clean = redact(text)
        else:
            clean = json.dumps(redact_value(parsed), default=str) + "\n"
        _replace(stdout, lambda out: out.write(clean.encode("utf-8")))
    stderr = jdir / "stderr.log"
    if stderr.is_file():

        def write_masked(out) -> None:
            with open(stderr, "rb") as src:
                for raw in src:
                    out.write(redact(raw.decode("utf-8", errors="replace")).encode("utf-8"))

        _replace(stderr, write_masked)
    (jdir / SCRUBBED_MARKER).touch()


def _replace(path: Path, write: Callable[[Any], None]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as out:
            write(out)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _redact_json(text: str | None) -> str | None:
    """Stored JSON through `redact_value`; the very same object back when nothing was masked."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        masked = redact(text)
        return text if masked == text else masked
    masked_value = redact_value(value)
    return text if masked_value == value else json.dumps(masked_value, default=str)


def _tail(path: Path, lines: int = LOG_TAIL_LINES, max_bytes: int = 64_000) -> list[str]:
    if not path.exists():
        return []
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - max_bytes))
        data = fh.read().decode("utf-8", errors="replace")
    return [redact(line) for line in data.splitlines()[-lines:]]


def _parse_result(stdout: str) -> dict[str, Any] | None:
    """The CLI prints one JSON document with --json; take the last one if several."""
    text = stdout.strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        start = text.rfind("\n{")
        try:
            value = json.loads(text[start + 1 :] if start >= 0 else text)
        except json.JSONDecodeError:
            return {"unparsed_output": redact(text[-2000:])}
    return value if isinstance(value, dict) else {"value": value}


class JobManager:
    """Starts, watches and cancels job processes; every state change goes to the control DB."""

    def __init__(
        self,
        settings: Settings,
        db: ControlDB,
        on_finished: Callable[[dict[str, Any]], None] | None = None,
        kill_grace_seconds: float = 5.0,
        extract_roots: tuple[Path, ...] | None = None,
    ):
        self.settings = settings
        # folders job extracts must lie in (resolved); None = any folder the service can read
        self.extract_roots = extract_roots
        self.db = db
        self.lake = Lake(settings.lake)
        self.jobs_dir = Path(settings.lake).resolve() / "control" / "jobs"
        self.on_finished = on_finished
        self.kill_grace_seconds = kill_grace_seconds
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    # -- lifecycle --
    def recover(self) -> list[str]:
        """Settle the jobs a previous service left queued/running; returns the interrupted ones.

        A worker still alive is stopped and its job is `interrupted`. A worker that had already
        ended is judged by its own output: the CLI prints its JSON summary only once the command
        has finished (and published), and `{"error": ...}` when it failed; so a job whose
        stdout holds a whole summary is `succeeded`, one with an error `failed`, and one with
        nothing (killed mid-way) `interrupted`.
        """
        rows = self.db.all("SELECT job_id, pid FROM jobs WHERE status IN ('queued', 'running')")
        interrupted = []
        for row in rows:
            alive = bool(row["pid"]) and self._kill_orphan(row["pid"])
            outcome = None if alive or not row["pid"] else self._outcome(row["job_id"])
            if outcome is not None:
                status, result, error = outcome
                log.info("job finished while the service was down", extra={"job_id": row["job_id"]})
                self._finish(row["job_id"], status, None, result, error)
                continue
            interrupted.append(row["job_id"])
            self.db.execute(
                "UPDATE jobs SET status = 'interrupted', finished_at = ?, "
                "error = COALESCE(error, 'the service stopped while the job was active') "
                "WHERE job_id = ? AND status IN ('queued', 'running')",
                (now_iso(), row["job_id"]),
            )
            if self.on_finished is not None:
                self.on_finished(self.get(row["job_id"]))
        self._redact_stored()
        return interrupted

    def _outcome(self, job_id: str) -> tuple[str, dict[str, Any] | None, str | None] | None:
        """(status, result, error) read from a dead worker's stdout, or None if it never ended."""
        path = self.jobs_dir / job_id / "stdout.json"
        try:
            result = _parse_result(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return None
        if not result or "unparsed_output" in result:
            return None
        note = "finished while the service was down; read from the job's own output"
        if "error" in result:
            error = str(result.pop("error"))
            return "failed", {**result, "recovered": note}, error
        return "succeeded", {**result, "recovered": note}, None

    def _redact_stored(self) -> None:
        """At startup no job runs: mask what earlier service versions (or a stop before a job's
        end) left unmasked, in the job folders and in the jobs table."""
        if self.jobs_dir.is_dir():
            for jdir in self.jobs_dir.iterdir():
                try:
                    scrub_job_files(jdir)
                except OSError:
                    log.exception("could not mask the stored output of job %s", jdir.name)
        for row in self.db.all(
            "SELECT job_id, error, result FROM jobs WHERE error IS NOT NULL OR result IS NOT NULL"
        ):
            error = redact(row["error"]) if row["error"] is not None else None
            result = _redact_json(row["result"])
            if error != row["error"] or result is not row["result"]:
                self.db.execute(
                    "UPDATE jobs SET error = ?, result = ? WHERE job_id = ?",
                    (error, result, row["job_id"]),
                )

    def _kill_orphan(self, pid: int) -> bool:
        """Stop a process group still running our CLI (pids get reused); True if there was one."""
        try:
            import psutil

            proc = psutil.Process(pid)
            cmd = " ".join(proc.cmdline())
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
        except Exception:
            return False
        if "cobranza.cli" not in cmd:
            return False
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                return True
            try:
                proc.wait(self.kill_grace_seconds)
                return True
            except Exception:
                continue
        return True

    def shutdown(self) -> None:
        """Service stopping cleanly: stop running jobs and record them as interrupted."""
        with self._lock:
            procs = dict(self._procs)
        for job_id, proc in procs.items():
            self.db.execute(
                "UPDATE jobs SET status = 'interrupted', finished_at = ?, "
                "error = 'the service stopped while the job was running' "
                "WHERE job_id = ? AND status IN ('queued', 'running')",
                (now_iso(), job_id),
            )
            self._signal_group(proc, wait=True)
            try:
                scrub_job_files(self.jobs_dir / job_id)
            except OSError:
                log.exception("could not mask the stored output of job %s", job_id)

    # -- submit --
    def submit(self, job_type: str, params: _Params, created_by: str | None) -> dict[str, Any]:
        zones = WRITES[job_type]
        job_id = uuid.uuid4().hex[:16]
        with self.db.transaction() as con:
            for row in con.execute(
                "SELECT job_id, type, status, zones, created_at FROM jobs "
                "WHERE status IN ('queued', 'running') ORDER BY created_at"
            ).fetchall():
                if conflicts(set(json.loads(row["zones"])), set(zones)):
                    raise JobConflict(dict(row))
            con.execute(
                "INSERT INTO jobs (job_id, type, params, zones, status, created_at, created_by, "
                "versions_at_start) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
                (
                    job_id,
                    job_type,
                    params.model_dump_json(),
                    json.dumps(list(zones)),
                    now_iso(),
                    created_by,
                    json.dumps({z: self.lake.current_version(z) for z in ZONES}),
                ),
            )
        thread = threading.Thread(
            target=self._run, args=(job_id, params.cli_args()), name=f"job-{job_id}", daemon=True
        )
        thread.start()
        return self.get(job_id)

    def command(self, cli_args: list[str]) -> list[str]:
        lake = str(Path(self.settings.lake).resolve())
        return [sys.executable, "-m", "cobranza.cli", "--lake", lake, "--json", *cli_args]

    def _run(self, job_id: str, cli_args: list[str]) -> None:
        jdir = self.jobs_dir / job_id
        jdir.mkdir(parents=True, exist_ok=True)
        # a wide console: the CLI's messages stay on one line in stderr.log, so that a number or
        # an e-mail is never split by wrapping (redaction masks shapes line by line)
        env = {
            **os.environ,
            **settings_env(self.settings),
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "4000",
        }
        try:
            with (
                open(jdir / "stdout.json", "wb") as out,
                open(jdir / "stderr.log", "wb") as err,
                self._lock,
            ):
                row = self.db.one("SELECT status FROM jobs WHERE job_id = ?", (job_id,))
                if row is None or row["status"] != "queued":
                    return  # cancelled before it started
                proc = subprocess.Popen(
                    self.command(cli_args),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=env,
                    start_new_session=True,
                    cwd=os.getcwd(),
                )
                self._procs[job_id] = proc
                self.db.execute(
                    "UPDATE jobs SET status = 'running', started_at = ?, pid = ? WHERE job_id = ?",
                    (now_iso(), proc.pid, job_id),
                )
            returncode = proc.wait()
        except Exception as exc:  # the process could not even start
            log.exception("job %s could not start", job_id)
            self._finish(job_id, "failed", None, None, f"could not start: {exc}")
            return
        finally:
            with self._lock:
                self._procs.pop(job_id, None)
        stdout = (jdir / "stdout.json").read_text(encoding="utf-8", errors="replace")
        result = _parse_result(stdout)
        error = None
        if returncode == 0:
            status = "succeeded"
        else:
            status = "failed"
            if result and "error" in result:
                error = str(result.pop("error"))
                result = result or None
            else:
                tail = _tail(jdir / "stderr.log", 3)
                error = tail[-1] if tail else f"exit code {returncode}"
        try:
            scrub_job_files(jdir)  # the process has ended: nothing unmasked stays on disk
        except OSError:
            log.exception("could not mask the stored output of job %s", job_id)
        row = self.db.one("SELECT status FROM jobs WHERE job_id = ?", (job_id,))
        if row and row["status"] in ("cancelled", "interrupted"):
            status = row["status"]
        self._finish(job_id, status, returncode, result, error)

    def _finish(
        self,
        job_id: str,
        status: str,
        returncode: int | None,
        result: dict[str, Any] | None,
        error: str | None,
    ) -> None:
        # masked before the record is stored: the webhook payload and every reader see only this
        result = redact_value(result) if result is not None else None
        error = redact(error) if error is not None else None
        self.db.execute(
            "UPDATE jobs SET status = ?, finished_at = COALESCE(finished_at, ?), returncode = ?, "
            "result = ?, error = COALESCE(error, ?) WHERE job_id = ?",
            (
                status,
                now_iso(),
                returncode,
                json.dumps(result, default=str) if result is not None else None,
                error,
                job_id,
            ),
        )
        log.info("job finished", extra={"job_id": job_id, "status": status})
        if self.on_finished is not None:
            try:
                self.on_finished(self.get(job_id))
            except Exception:
                log.exception("job %s: completion hook failed", job_id)

    # -- cancel --
    def cancel(self, job_id: str) -> dict[str, Any] | None:
        """Returns the job after the request; None if unknown. Finished jobs are left as they are."""
        with self._lock:
            row = self.db.one("SELECT status FROM jobs WHERE job_id = ?", (job_id,))
            if row is None:
                return None
            if row["status"] not in ACTIVE:
                return self.get(job_id)
            self.db.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = ?, error = 'cancelled on request' "
                "WHERE job_id = ?",
                (now_iso(), job_id),
            )
            proc = self._procs.get(job_id)
        if proc is not None:
            self._signal_group(proc, wait=True)
        elif row["status"] == "queued" and self.on_finished is not None:
            self.on_finished(self.get(job_id))
        return self.get(job_id)

    def _signal_group(self, proc: subprocess.Popen, wait: bool) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            if not wait:
                return
            try:
                proc.wait(self.kill_grace_seconds)
                return
            except subprocess.TimeoutExpired:
                continue

    # -- read --
    def get(self, job_id: str) -> dict[str, Any] | None:
        row = self.db.one("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        return self._view(row) if row else None

    def list(
        self, status: str | None = None, job_type: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM jobs WHERE 1=1", []
        if status:
            sql += " AND status = ?"
            args.append(status)
        if job_type:
            sql += " AND type = ?"
            args.append(job_type)
        sql += " ORDER BY created_at DESC, job_id LIMIT ?"
        args.append(limit)
        return [self._view(r, tail=False) for r in self.db.all(sql, tuple(args))]

    def counts(self) -> dict[str, int]:
        return {
            r["status"]: r["n"]
            for r in self.db.all("SELECT status, count(*) AS n FROM jobs GROUP BY status")
        }

    def _view(self, row: dict[str, Any], tail: bool = True) -> dict[str, Any]:
        started, finished = row["started_at"], row["finished_at"]
        seconds = None
        if started:
            end = datetime.fromisoformat(finished) if finished else None
            start = datetime.fromisoformat(started)
            seconds = round(((end or datetime.now(UTC)) - start).total_seconds(), 3)
        return {
            "job_id": row["job_id"],
            "type": row["type"],
            "params": json.loads(row["params"]),
            "status": row["status"],
            "progress": self._progress(row),
            "created_at": row["created_at"],
            "started_at": started,
            "finished_at": finished,
            "seconds": seconds,
            "created_by": row["created_by"],
            "returncode": row["returncode"],
            # masked again on read: cheap, and safe for a record written before masking existed
            "error": redact(row["error"]) if row["error"] else row["error"],
            "result": redact_value(json.loads(row["result"])) if row["result"] else None,
            "log_tail": _tail(self.jobs_dir / row["job_id"] / "stderr.log") if tail else None,
        }

    def _progress(self, row: dict[str, Any]) -> dict[str, Any]:
        """Stages done = lake zones this job was to write that got a new version since it started."""
        zones = [z for z in json.loads(row["zones"]) if z in ZONES]
        if row["status"] == "succeeded":
            return {"fraction": 1.0, "zones_published": zones, "zones": zones}
        if row["status"] == "queued":
            return {"fraction": 0.0, "zones_published": [], "zones": zones}
        before = json.loads(row["versions_at_start"] or "{}")
        done = [z for z in zones if self.lake.current_version(z) != before.get(z)]
        fraction = round(len(done) / len(zones), 3) if zones else None
        if row["status"] == "running" and fraction == 1.0:
            fraction = 0.99
        return {"fraction": fraction, "zones_published": done, "zones": zones}
