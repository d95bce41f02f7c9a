"""The Spark session the engine runs on, and whether Spark can run here at all.

PySpark is an optional extra (``requirements-spark.txt``) and needs a Java 17+ runtime; the app and the DuckDB engine
need neither. :func:`unavailable` says why Spark cannot run (in words a person can act on), :func:`get_session` starts
or reuses a session with the settings the engine's results depend on:

- ``spark.sql.session.timeZone=UTC``: the engine reads timestamps as UTC instants, as the canonical table does;
- Arrow for moving frames between the JVM and Python (driver collects and ``mapInPandas`` workers);
- Python's fault handler in the workers, so that a worker that crashes reports its Python stack, not only its exit;
- a modest number of shuffle partitions for local masters (adaptive execution merges them further), and a 2 GB heap
  for their JVM (:data:`LOCAL_DRIVER_MEMORY`, where the tasks also run);
- ``SPARK_LOCAL_IP=127.0.0.1`` for local masters, so a laptop or CI box never binds a public interface;
- Python workers run ``PYSPARK_PYTHON`` when it is set, else the interpreter that runs the command
  (``sys.executable``), on every master: PySpark would start ``python3`` from ``PATH``, which under cron, a service or
  a virtual environment not on ``PATH`` is another Python, without pandas. On a cluster whose workers run on other
  machines, set ``PYSPARK_PYTHON`` to the executors' Python (this machine's interpreter path may not exist there);
- on a cluster master (anything but ``local``), the product's own code is shipped to the executors
  (:func:`ship_code`: the ``retention_core`` package as a zip, ``addPyFile``), so the executors need the product's
  dependencies (pandas, pyarrow, scikit-learn, cloudpickle) but not the product itself installed.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError

DEFAULT_MASTER = "local[*]"
#: The heap of a local master's JVM, where the tasks run too (Spark's default is 1 GB): a log of a million lines read,
#: cached and aggregated there used more than half of 1 GB. The analyst's ``spark.driver.memory`` (the ``conf`` given,
#: or ``SPARK_DRIVER_MEMORY``) wins.
LOCAL_DRIVER_MEMORY = "2g"


def java_version() -> str | None:
    """The first line of ``java -version`` (None when no Java runtime is found)."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")  # Spark uses JAVA_HOME when set
    if not java or not os.path.exists(java):
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stderr or out.stdout).strip().splitlines()
    return text[0] if text else None


def unavailable() -> str | None:
    """Why the Spark engine cannot run here, or None when it can."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "PySpark is not installed: pip install -r requirements-spark.txt"
    if java_version() is None:
        return ("no Java runtime found (Spark needs Java 17 or later): install openjdk-17-jre-headless or set JAVA_HOME"
                + (f" (JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java)" if os.environ.get("JAVA_HOME") else ""))
    return None


def require_spark() -> None:

    why = unavailable()
    if why:
        raise ConfigError(f"The Spark engine cannot run: {why}. The DuckDB engine (the default) needs neither.")


def worker_python() -> str:
    """The Python a session's workers run: ``PYSPARK_PYTHON`` when set, else this interpreter."""
    return os.environ.get("PYSPARK_PYTHON") or sys.executable or "python3"


def get_session(master: str | None = None, *, app: str = "retention-studio", conf: dict | None = None):
    """A Spark session on ``master`` (default ``local[*]``; an existing active session is reused as it is, with the
    session time zone set to UTC)."""
    require_spark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        active.conf.set("spark.sql.session.timeZone", "UTC")
        return active
    master = master or DEFAULT_MASTER
    local = master.startswith("local")
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = worker_python()  # read by the SparkContext when it starts
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
    builder = (SparkSession.builder.master(master).appName(app)
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.execution.arrow.pyspark.fallback.enabled", "false")
               .config("spark.sql.adaptive.enabled", "true")
               .config("spark.sql.optimizer.canChangeCachedPlanOutputPartitioning", "true")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.python.worker.faulthandler.enabled", "true")  # a crashed worker says where
               .config("spark.sql.parquet.inferTimestampNTZ.enabled", "false"))
    if local:
        cores = os.cpu_count() or 2
        if master.startswith("local[") and master[6:-1].isdigit():
            cores = int(master[6:-1])
        if "spark.driver.memory" not in (conf or {}) and not os.environ.get("SPARK_DRIVER_MEMORY"):
            builder = builder.config("spark.driver.memory", LOCAL_DRIVER_MEMORY)
        builder = (builder.config("spark.ui.enabled", "false")
                   .config("spark.sql.shuffle.partitions", str(max(4, 4 * cores)))
                   .config("spark.driver.host", os.environ.get("SPARK_LOCAL_IP", "127.0.0.1")))
    for k, v in (conf or {}).items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    if not local:
        ship_code(spark)
    return spark


CODE_ZIP = "retention_core.zip"


def ship_code(spark) -> None:
    """Make the product's code importable by the session's executors: the ``retention_core`` package zipped (Python
    files only) and added with ``addPyFile``, once per Spark context. Needed wherever the executors' Python does not
    have the product installed (a cluster); the work the executors run (dates read by pandas, a model applied to
    partitions) imports it."""
    sc = spark.sparkContext
    if CODE_ZIP in getattr(sc, "_python_includes", []):
        return
    package = Path(__file__).resolve().parents[1]
    folder = Path(tempfile.mkdtemp(prefix="retention-code-"))
    atexit.register(shutil.rmtree, folder, True)
    with zipfile.ZipFile(folder / CODE_ZIP, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(package.rglob("*.py")):
            zf.write(f, str(f.relative_to(package.parent)))
    sc.addPyFile(str(folder / CODE_ZIP))


def is_spark_frame(data) -> bool:
    """True for a PySpark DataFrame (an analyst's raw log in their own session)."""
    kind = type(data)
    return kind.__name__ == "DataFrame" and kind.__module__.startswith("pyspark.sql")


@contextmanager
def utc(spark):
    """The session's time zone set to UTC while the engine works on it, then put back: the engine reads timestamps as
    UTC instants, and an analyst's own session keeps its settings."""
    key = "spark.sql.session.timeZone"
    before = spark.conf.get(key, None)
    spark.conf.set(key, "UTC")
    try:
        yield spark
    finally:
        if before is not None:
            spark.conf.set(key, before)
        else:
            spark.conf.unset(key)
