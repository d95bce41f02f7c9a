"""A Spark standalone cluster on this machine for the tests: a master and workers started with PySpark's own
``spark-class`` on 127.0.0.1 and free ports, each in a process group of its own (a worker's executors and their
Python workers are its children), and stopped by killing those groups, so that no JVM outlives the test."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "bin" / "spark-class"


class StandaloneCluster:
    """``with StandaloneCluster(folder, workers=2) as c:`` ... ``c.url`` (``spark://127.0.0.1:PORT``)."""

    def __init__(self, folder: Path, *, workers: int = 2, cores: int = 1, memory: str = "1g", timeout: float = 120,
                 env: dict | None = None):
        self.folder, self.workers, self.cores, self.memory, self.timeout = Path(folder), workers, cores, memory, timeout
        self.port, self.webui = free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        # SPARK_HOME given, so that spark-class does not start a Python to find it
        self.env = {**os.environ, **(env or {}), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_DAEMON_MEMORY": "256m",
                    "SPARK_NO_DAEMONIZE": "1", "SPARK_HOME": str(spark_class().parents[1])}
        self.env.pop("PYSPARK_PYTHON", None)

    def _start(self, name: str, *args: str) -> None:
        log = open(self.folder / f"{name}.log", "wb")
        self.procs.append(subprocess.Popen([str(spark_class()), *args], stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, env=self.env, cwd=self.folder,
                                           start_new_session=True))
        log.close()

    def alive_workers(self) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.webui}/json/", timeout=5) as r:
                state = json.load(r)
        except (OSError, ValueError):
            return 0
        return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")

    def logs(self) -> str:
        return "\n".join(f"--- {f.name}\n" + f.read_text(errors="replace")[-3000:]
                         for f in sorted(self.folder.glob("*.log")))

    def __enter__(self) -> "StandaloneCluster":
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                        "--port", str(self.port), "--webui-port", str(self.webui))
            for i in range(self.workers):
                work = self.folder / f"work-{i}"
                work.mkdir(exist_ok=True)
                self._start(f"worker-{i}", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                            "--webui-port", str(free_port()), "--cores", str(self.cores), "--memory", self.memory,
                            "--work-dir", str(work), self.url)
            deadline = time.monotonic() + self.timeout
            while self.alive_workers() < self.workers:
                dead = [p.args[1] for p in self.procs if p.poll() is not None]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"the Spark cluster did not start ({', '.join(dead) or 'timed out'}):\n"
                                       + self.logs())
                time.sleep(0.5)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Every process group killed (workers first: their executors go with them), then waited for."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for p in reversed(self.procs):
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and any(_group_alive(p.pid) for p in self.procs):
                for p in self.procs:
                    p.poll()
                time.sleep(0.2)
            if not any(_group_alive(p.pid) for p in self.procs):
                break
        for p in self.procs:
            p.wait(timeout=10)

    def leftovers(self) -> list[int]:
        """The process groups still alive (none after :meth:`stop`)."""
        return [p.pid for p in self.procs if _group_alive(p.pid)]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
