"""A Spark standalone cluster on loopback, started the way operators start one, for tests and benchmarks.

One master and `workers` workers, each its own JVM launched with `spark-class
org.apache.spark.deploy.master.Master` / `...deploy.worker.Worker` from the installed pyspark
package, bound to 127.0.0.1, with small daemon heaps and one core and `worker_memory` per worker
so that two fit on a 2-core machine next to the driver. Work dirs (executors' stdout and stderr),
daemon logs and a configuration folder live under `root`. Each daemon runs in its own session
(process group = its pid); `stop` signals the groups (TERM, then KILL) and waits for every pid.

The master's real ports are read from its log ("Starting Spark master at spark://...", "service
'MasterUI' on port N"): Spark moves to the next port when the chosen one was taken meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

START_TIMEOUT = 240.0  # seconds; generous: a busy 2-core machine starts a JVM in 5-30 s
STOP_TIMEOUT = 60.0
MASTER_URL = re.compile(r"Starting Spark master at (spark://\S+)")
MASTER_UI = re.compile(r"Successfully started service 'MasterUI' on port (\d+)")


class ClusterError(RuntimeError):
    """The cluster did not start or stop; the message carries the daemons' log tails."""


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def missing_binaries() -> str | None:
    """Why a standalone cluster cannot start here (None when it can)."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "java is not installed (Spark needs Java 17)"
    if not (spark_home() / "bin" / "spark-class").exists():
        return f"{spark_home()}/bin/spark-class is missing from the pyspark package"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class SparkStandalone:
    root: Path
    workers: int = 2
    worker_cores: int = 1
    worker_memory: str = "1g"
    daemon_memory: str = "256m"
    master_url: str = ""
    webui_url: str = ""
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    groups: list[int] = field(default_factory=list)  # every daemon's process group, ever

    def worker_dir(self, i: int) -> Path:
        return self.root / f"worker-{i}"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def _env(self) -> dict[str, str]:
        conf = self.root / "conf"  # empty: no spark-defaults.conf or log4j2 of the machine's
        conf.mkdir(parents=True, exist_ok=True)
        return {
            **os.environ,
            "SPARK_HOME": str(spark_home()),
            "SPARK_CONF_DIR": str(conf),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_DAEMON_MEMORY": self.daemon_memory,
            "SPARK_LOG_DIR": str(self.root / "logs"),
            "SPARK_WORKER_DIR": str(self.root / "work"),
        }

    def _launch(self, name: str, *args: str) -> subprocess.Popen:
        self.log(name).parent.mkdir(parents=True, exist_ok=True)
        with open(self.log(name), "ab") as out:
            proc = subprocess.Popen(
                [str(spark_home() / "bin" / "spark-class"), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env(),
                cwd=self.root,
                start_new_session=True,  # its own process group, signalled as a whole on stop
            )
        self.procs[name] = proc
        self.groups.append(proc.pid)
        return proc

    def _wait(self, what: str, ready: Any, timeout: float = START_TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise ClusterError(
                        f"spark {name} (pid {proc.pid}) exited with {proc.returncode} while "
                        f"waiting for {what}; its log:\n{_tail(self.log(name))}"
                    )
            value = ready()
            if value:
                return value
            time.sleep(0.5)
        logs = "\n".join(f"--- {n}:\n{_tail(self.log(n))}" for n in self.procs)
        raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")

    def _master_ports(self) -> tuple[str, str] | None:
        text = self.log("master").read_text(errors="replace")
        url, ui = MASTER_URL.search(text), MASTER_UI.search(text)
        return (url.group(1), f"http://127.0.0.1:{ui.group(1)}") if url and ui else None

    def start(self) -> SparkStandalone:
        """Start the master, then the workers; return once every worker is ALIVE at the master."""
        self.root.mkdir(parents=True, exist_ok=True)
        master_port, ui_port = free_port(), free_port()
        self._launch(
            "master",
            "org.apache.spark.deploy.master.Master",
            *("--host", "127.0.0.1", "--port", str(master_port), "--webui-port", str(ui_port)),
        )
        self.master_url, self.webui_url = self._wait("the master's ports", self._master_ports)
        for i in range(1, self.workers + 1):
            self.worker_dir(i).mkdir(parents=True, exist_ok=True)
            self._launch(
                f"worker-{i}",
                "org.apache.spark.deploy.worker.Worker",
                *("--host", "127.0.0.1", "--port", "0", "--webui-port", "0"),
                *("--cores", str(self.worker_cores), "--memory", self.worker_memory),
                *("--work-dir", str(self.worker_dir(i)), self.master_url),
            )
        self._wait(f"{self.workers} workers to register at {self.webui_url}", self._all_alive)
        return self

    def state(self) -> dict[str, Any]:
        """The master's JSON (`/json/`): workers, active and completed applications."""
        with urllib.request.urlopen(f"{self.webui_url}/json/", timeout=10) as resp:
            return json.load(resp)

    def _all_alive(self) -> bool:
        try:
            state = self.state()
        except OSError:
            return False
        return sum(w["state"] == "ALIVE" for w in state["workers"]) >= self.workers

    def stop(self) -> None:
        """TERM every daemon's process group (workers first), KILL what is left, wait for all."""
        for name in sorted(self.procs, key=lambda n: n == "master"):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.procs[name].pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT)
        for pgid in self.live_groups():  # executors, in their worker's group, left behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.live_groups() and time.monotonic() < deadline:
            time.sleep(0.2)  # until the killed processes are gone (reaped by init)
        self.procs.clear()

    def live_groups(self) -> list[int]:
        """The daemons' process groups that still hold a process (executors included)."""
        alive = []
        for pgid in self.groups:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                continue
            except PermissionError:
                pass
            alive.append(pgid)
        return alive

    def __enter__(self) -> SparkStandalone:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
