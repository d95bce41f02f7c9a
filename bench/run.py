"""One command for every benchmark: speed against a reference, peak memory, model quality, targets.

    python -m bench.run --quick [--out bench/results]      # small sizes, one run per step: a few minutes
    python -m bench.run --full  [--out bench/results]      # 1M and 10M events, three runs per step
    python -m bench.run --quick --only features,app        # some sections only
                                                           # (features, training, scoring, shap, app, quality)
    python -m bench.run --merge A,B --out C                # one report from partial runs in folders A and B

Every step runs in a fresh Python process, so its peak memory (RSS) is its own and steps do not warm each other up.
Product and reference steps alternate within each run, so background load hits both alike; the median over the runs
is reported, with the ratio to the reference and the machine's core count. Writes ``results.json`` (every
measurement of every run) and ``results.md`` (the tables the README's Performance section shows).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
CHROMIUM = os.environ.get("RETENTION_E2E_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
SECTIONS = ("features", "training", "scoring", "shap", "app", "quality")
DEEP = ("mlp", "cnn", "gru", "transformer")

MODES = {
    "quick": {
        "runs": 1,
        "feature_events": [200_000, 1_000_000],
        "train_rows": [20_000],
        "train_models": ["recency", "bgnbd", "logreg", "random_forest", "gbm", "ensemble", "mlp", "cnn", "gru",
                         "transformer"],
        "epochs": 1,
        "score_events": 200_000,
        "score_users": 200_000,
        "export_users": 200_000,
        "shap_models": ["recency", "bgnbd", "logreg", "random_forest", "gbm", "mlp", "gru"],
        "shap_train_rows": 5_000,
        "shap_users": 1_000,
        "shap_users_deep": 100,
        "app_upload_events": 200_000,
        "quality_cutoffs": 1,
        "quality_deep": False,
    },
    "full": {
        "runs": 3,
        "feature_events": [1_000_000, 10_000_000],
        "train_rows": [100_000, 1_000_000],
        "train_models": ["recency", "bgnbd", "logreg", "random_forest", "gbm", "ensemble", "mlp", "cnn", "gru",
                         "transformer"],
        "epochs": 2,
        "score_events": 1_000_000,
        "score_users": 1_000_000,
        "export_users": 1_000_000,
        "shap_models": ["recency", "bgnbd", "logreg", "random_forest", "gbm", "ensemble", "mlp", "cnn", "gru",
                        "transformer"],
        "shap_train_rows": 20_000,
        "shap_users": 1_000,
        "shap_users_deep": 1_000,
        "app_upload_events": 1_000_000,
        "quality_cutoffs": 2,
        "quality_deep": True,
    },
}


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"


# ==================================================================================================== child steps
# Each step runs alone in a child process: ``python -m bench.run --step NAME --params JSON --result FILE``.
# It returns {"measures": {name: seconds}, "info": {...}, "rows": [...]}; set-up outside the measures is not timed.

def _events_file(cache: str, n: int) -> Path:
    return Path(cache) / f"events_{n}.parquet"


def _load_raw(cache: str, n: int):
    import pandas as pd

    return pd.read_parquet(_events_file(cache, n))


def _canonical(raw):
    from retention_core.events import canonical_events
    from retention_core.roles import infer_schema

    return canonical_events(raw, infer_schema(raw))


def _cutoff(ev):
    import pandas as pd

    from retention_core.dataset import data_end

    return data_end(ev) - pd.Timedelta(days=90)


def step_generate(cache: str, n: int, csv: bool = False) -> dict:
    """Generate a log of about ``n`` events once and keep it (Parquet; gzip CSV too for the upload test)."""
    from assets.generator import generate_for_events

    path = _events_file(cache, n)
    info = {}
    if not path.exists():
        t = time.perf_counter()
        raw = generate_for_events(n, seed=0)
        info["generate_seconds"] = time.perf_counter() - t
        raw.to_parquet(path)
    if csv:
        gz = Path(cache) / f"events_{n}.csv.gz"
        if not gz.exists():
            raw = _load_raw(cache, n)
            raw.to_csv(gz, index=False, compression={"method": "gzip", "compresslevel": 1})
        info["csv_mb"] = gz.stat().st_size / 1e6
    return {"measures": {}, "info": info}


def _training_cutoffs(ev) -> list:
    """The cutoffs the product trains on by default (``default_config``: up to 6 snapshots, 30 days apart)."""
    from retention_core.dataset import default_config, snapshot_dates

    return snapshot_dates(ev, default_config(ev))


def step_features_product(cache: str, n: int) -> dict:
    from retention_core.dataset import SnapshotConfig, build_dataset, default_config

    raw = _load_raw(cache, n)
    t0 = time.perf_counter()
    ev = _canonical(raw)
    t1 = time.perf_counter()
    ds = build_dataset(ev, SnapshotConfig(horizon_days=90, lookback_days=365), cutoffs=[_cutoff(ev)])
    t2 = time.perf_counter()
    cutoffs = _training_cutoffs(ev)
    t3 = time.perf_counter()
    train = build_dataset(ev, default_config(ev), cutoffs=cutoffs)
    t4 = time.perf_counter()
    ds.frame.to_parquet(Path(cache) / f"product_features_{n}.parquet")
    return {"measures": {"total": t2 - t0, "build": t2 - t1, "build_training": t4 - t3},
            "info": {"events": len(ev), "users": len(ds.frame), "columns": len(ds.frame.columns),
                     "training_cutoffs": len(cutoffs), "training_rows": len(train.frame)}}


def step_features_full(cache: str, n: int) -> dict:
    """The pandas reference of every product column (``bench/reference_features.py``): one cutoff, then each
    training cutoff in turn (a plain implementation recomputes everything per cutoff)."""
    from bench.reference_features import pandas_full_reference
    from retention_core.dataset import SnapshotConfig, data_end, default_config

    ev = _canonical(_load_raw(cache, n))
    end = data_end(ev)
    t = time.perf_counter()
    r = pandas_full_reference(ev, _cutoff(ev), SnapshotConfig(horizon_days=90, lookback_days=365), end)
    one = time.perf_counter() - t
    r.to_parquet(Path(cache) / f"full_features_{n}.parquet")
    cfg, cutoffs = default_config(ev), _training_cutoffs(ev)
    t = time.perf_counter()
    rows = sum(len(pandas_full_reference(ev, T, cfg, end)) for T in cutoffs)
    return {"measures": {"build": one, "build_training": time.perf_counter() - t},
            "info": {"users": len(r), "columns": len(r.columns), "training_cutoffs": len(cutoffs),
                     "training_rows": rows}}


def step_features_pandas(cache: str, n: int) -> dict:
    from bench.reference import pandas_features

    ev = _canonical(_load_raw(cache, n))
    T = _cutoff(ev)
    t = time.perf_counter()
    r = pandas_features(ev, T)
    s = time.perf_counter() - t
    r[["orders_90d"]].to_parquet(Path(cache) / f"pandas_features_{n}.parquet")
    return {"measures": {"build": s}, "info": {"users": len(r), "columns": len(r.columns) + 1}}


def step_features_lifetimes(cache: str, n: int) -> dict:
    from bench.reference import LIFETIMES_LABEL, lifetimes_summary

    ev = _canonical(_load_raw(cache, n))
    T = _cutoff(ev)
    t = time.perf_counter()
    s = lifetimes_summary(ev, T)
    sec = time.perf_counter() - t
    s.to_parquet(Path(cache) / f"lifetimes_summary_{n}.parquet")
    return {"measures": {"build": sec}, "info": {"users": len(s), "label": LIFETIMES_LABEL}}


def _synthetic(rows: int, extra: int = 0):
    from bench.bench_models import synthetic_users

    X, y, seq, numeric, categorical = synthetic_users(rows + extra)
    return X, y, seq, numeric, categorical


def _fit(key: str, rows: int, epochs: int, X, y, seq, numeric, categorical):
    from retention_core.models import REGISTRY, make_model

    spec = REGISTRY[key]
    params = {"epochs": epochs} if spec.family == "deep" else {}
    model = make_model(key, numeric=numeric, categorical=categorical, horizon_days=90, **params)
    s = seq[:rows] if spec.needs_sequences else None
    if spec.family == "deep":
        import keras  # noqa: F401  (the import is not training time)
    t = time.perf_counter()
    if s is not None:
        model.fit(X.iloc[:rows], y[:rows], sequences=s)
    else:
        model.fit(X.iloc[:rows], y[:rows])
    return model, time.perf_counter() - t


def step_train_model(key: str, rows: int, epochs: int) -> dict:
    X, y, seq, numeric, categorical = _synthetic(rows)
    model, fit_s = _fit(key, rows, epochs, X, y, seq, numeric, categorical)
    info = {"rows": rows}
    hist = getattr(model, "history_", None)
    if hist is not None:
        n_ep = max(len(hist), 1)
        info.update(epochs=n_ep, seconds_per_epoch=fit_s / n_ep, epochs_per_second=n_ep / fit_s)
    return {"measures": {"fit": fit_s}, "info": info}


def step_train_reference(rows: int) -> dict:
    from bench.reference import hgb_fit

    X, y, _, numeric, categorical = _synthetic(rows)
    t = time.perf_counter()
    hgb_fit(X[numeric + categorical], y, categorical)
    return {"measures": {"fit": time.perf_counter() - t}, "info": {"rows": rows}}


def _scoring_setup(cache: str, events: int):
    from retention_core.dataset import SnapshotConfig, build_dataset
    from retention_core.roles import infer_schema
    from retention_core.events import canonical_events
    from retention_core.dataset import training_cutoffs

    raw = _load_raw(cache, events)
    schema = infer_schema(raw)
    ev = canonical_events(raw, schema)
    cfg = SnapshotConfig(horizon_days=90)
    ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))
    return raw, schema, ev, cfg, ds


def _replicate(X, users: int):
    import pandas as pd

    return pd.concat([X] * (users // len(X) + 1), ignore_index=True).iloc[:users]


def step_score_product(cache: str, events: int, users: int) -> dict:
    from retention_core.bundle import load_run, save_run
    from retention_core.dataset import build_dataset
    from retention_core.scoring import score
    from retention_core.training import TrainConfig, train_models

    raw, schema, ev, cfg, ds = _scoring_setup(cache, events)
    res = train_models(ds, TrainConfig(models=["gbm"]), horizon_days=90)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RETENTION_HOME"] = tmp
        path = save_run(Path(tmp) / "run", res, schema=schema, dataset=ds, snapshot=cfg.as_dict(),
                        data_digest="bench", train_config=TrainConfig(models=["gbm"]))
        t = time.perf_counter()
        run = load_run(path)
        model = run.model()
        load_s = time.perf_counter() - t
        frame = build_dataset(ev, cfg, cutoffs=[ev["ts"].max()]).frame
        big = _replicate(frame[run.info["numeric"] + run.info["categorical"]], users)
        t = time.perf_counter()
        model.predict_proba(big.iloc[:1000])  # the first call starts thread pools: throughput is measured after it
        cold_s = time.perf_counter() - t
        t = time.perf_counter()
        model.predict_proba(big)
        model_s = time.perf_counter() - t
        t = time.perf_counter()
        scores, _, _ = score(run, raw)
        e2e_s = time.perf_counter() - t
    return {"measures": {"model": model_s, "e2e": e2e_s, "load": load_s, "first_1000": cold_s},
            "info": {"users": users, "events": len(raw), "scored_users": len(scores),
                     "trees": getattr(getattr(model, "base_", model), "n_iter_", None),
                     "users_per_second": users / model_s, "e2e_users_per_second": len(scores) / e2e_s}}


def step_score_reference(cache: str, events: int, users: int) -> dict:
    from bench.reference import hgb_fit, hgb_predict
    from retention_core.dataset import build_dataset

    raw, schema, ev, cfg, ds = _scoring_setup(cache, events)
    lab = ds.labelled()
    cols = [c for c in lab.numeric + lab.categorical]
    model = hgb_fit(lab.frame[cols], lab.frame["churned"].to_numpy(), lab.categorical)
    frame = build_dataset(ev, cfg, cutoffs=[ev["ts"].max()]).frame
    big = _replicate(frame[cols], users)
    hgb_predict(model, big.iloc[:1000], lab.categorical)  # the same warm-up as the product
    t = time.perf_counter()
    hgb_predict(model, big, lab.categorical)
    model_s = time.perf_counter() - t
    t = time.perf_counter()  # by hand: canonical table, features as of the end, predict
    ev2 = _canonical(raw)
    f2 = build_dataset(ev2, cfg, cutoffs=[ev2["ts"].max()]).frame
    hgb_predict(model, f2[cols], lab.categorical)
    e2e_s = time.perf_counter() - t
    return {"measures": {"model": model_s, "e2e": e2e_s}, "info": {"users": users, "scored_users": len(f2)}}


def _export_list(users: int):
    from bench.bench_export import synthetic
    from retention_core.scoring import at_risk_list

    scores, frame, reasons = synthetic(users)
    return at_risk_list(scores, frame, method="threshold", threshold=0.0, reasons=reasons, model="gbm")


def step_export_product(users: int) -> dict:
    from retention_core.export import export_csv

    lst = _export_list(users)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        export_csv(lst, Path(tmp) / "at_risk.csv")
        s = time.perf_counter() - t
        mb = (Path(tmp) / "at_risk.csv").stat().st_size / 1e6
    return {"measures": {"export": s}, "info": {"users": users, "csv_mb": mb, "users_per_second": users / s}}


def step_export_reference(users: int) -> dict:
    lst = _export_list(users)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        lst.to_csv(Path(tmp) / "at_risk.csv", index=False)
        s = time.perf_counter() - t
    return {"measures": {"export": s}, "info": {"users": users}}


def _shap_setup(key: str, rows: int, users: int, epochs: int):
    X, y, seq, numeric, categorical = _synthetic(rows, users)
    model, _ = _fit(key, rows, epochs, X, y, seq, numeric, categorical)
    from retention_core.models import REGISTRY

    needs = REGISTRY[key].needs_sequences
    Xe = X.iloc[rows:rows + users].reset_index(drop=True)
    se = seq[rows:rows + users] if needs else None
    return model, X, y, seq, numeric, categorical, Xe, se, needs


def step_shap_product(key: str, rows: int, users: int, epochs: int) -> dict:
    from retention_core.explain import make_explainer

    model, X, y, seq, numeric, categorical, Xe, se, needs = _shap_setup(key, rows, users, epochs)
    import shap  # noqa: F401  (the import is not explanation time)

    t = time.perf_counter()
    ex = make_explainer(model, key, X.iloc[:rows], numeric, categorical,
                        sequences_background=seq[:rows] if needs else None, reference_y=y[:rows])
    ex.shap_values(Xe, se)
    s = time.perf_counter() - t
    return {"measures": {"shap": s, "per_1000": s * 1000 / users},
            "info": {"users": users, "method": ex.method, "background": ex.background_size, "units": len(ex.units)}}


def step_shap_reference(key: str, rows: int, users: int, epochs: int) -> dict:
    """Tree and linear models: the shap library used directly on the fitted estimator and its encoded features,
    with the same background size as the product. Neural networks: shap's GradientExplainer on the Keras model with
    the product's background size and samples per user. Other models: the model's own prediction for the users."""
    import numpy as np

    from retention_core.explain import DEFAULT_BACKGROUND

    model, X, y, seq, numeric, categorical, Xe, se, needs = _shap_setup(key, rows, users, epochs)
    base = model.base_ if hasattr(model, "base_") and hasattr(model, "calibrator_") else model
    pipe = getattr(base, "pipeline_", None)
    if pipe is not None and key in ("logreg", "random_forest", "gbm"):
        import shap

        pre, est = pipe.named_steps["preprocess"], pipe.named_steps["model"]

        def dense(a):
            return np.asarray(a.toarray() if hasattr(a, "toarray") else a, dtype="float64")

        bg = dense(pre.transform(X.iloc[:rows].sample(DEFAULT_BACKGROUND, random_state=0)))
        t = time.perf_counter()
        Z = dense(pre.transform(Xe))
        if key == "logreg":
            shap.LinearExplainer(est, bg)(Z)
        else:
            shap.TreeExplainer(est, bg, feature_perturbation="interventional")(Z, check_additivity=False)
        s = time.perf_counter() - t
        what = "shap library directly"
    elif key in DEEP and hasattr(base, "model_"):
        import shap

        from retention_core.explain import DEEP_BACKGROUND, GRADIENT_SAMPLES

        pick = np.random.default_rng(0).choice(rows, DEEP_BACKGROUND, replace=False)
        bg = base.model_inputs(X.iloc[pick], seq[pick] if needs else None)
        t = time.perf_counter()
        ex = shap.GradientExplainer(base.model_, bg if needs else bg[0])
        inputs = base.model_inputs(Xe, se)
        ex.shap_values(inputs if needs else inputs[0], nsamples=GRADIENT_SAMPLES)
        s = time.perf_counter() - t
        what = f"shap GradientExplainer directly ({DEEP_BACKGROUND} background users, {GRADIENT_SAMPLES} samples)"
    else:
        t = time.perf_counter()
        model.predict_proba(Xe, sequences=se) if needs else model.predict_proba(Xe)
        s = time.perf_counter() - t
        what = "prediction only"
    return {"measures": {"shap": s, "per_1000": s * 1000 / users}, "info": {"users": users, "reference": what}}


# -------------------------------------------------------------------------------------------------- app (browser)
REFERENCE_APP = '''
import pandas as pd
import streamlit as st

def data():
    st.title("Data")
    src = st.radio("Data source", ["Built-in sample", "Upload a file"], horizontal=True)
    if src == "Built-in sample":
        df = pd.read_csv(SAMPLE)
    else:
        up = st.file_uploader("Upload an event log", type=["csv", "gz"])
        if up is None:
            st.info("Upload a file to begin")
            return
        df = pd.read_csv(up, compression="gzip" if up.name.endswith(".gz") else None)
    st.subheader("What we understood")
    st.write(f"{len(df):,} rows")
    st.dataframe(df.head(20))

def train():
    st.title("Train")
    st.caption("Train several retention models")

st.navigation([st.Page(data, title="Data", default=True), st.Page(train, title="Train", url_path="train")]).run()
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


BUSY_JS = """() => !!document.querySelector('[data-stale="true"]') ||
    !![...document.querySelectorAll('[data-testid="stStatusWidget"]')].find(e => /running/i.test(e.innerText || ''))"""


def _settled(page, since: float, quiet_s: float = 0.5, timeout_s: float = 600) -> float | None:
    """Seconds from ``since`` until the app finished its rerun (no stale element, no running indicator), confirmed
    by ``quiet_s`` of quiet; None when it never settles."""
    end = time.perf_counter() + timeout_s
    quiet_since = None
    while time.perf_counter() < end:
        if page.evaluate(BUSY_JS):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.perf_counter()
        elif time.perf_counter() - quiet_since >= quiet_s:
            return quiet_since - since
        time.sleep(0.05)
    return None


def step_app(kind: str, cache: str, upload_events: int) -> dict:
    """Time from `streamlit run` to the Data page rendered, a sidebar click to Train rendered, and the same after
    uploading a generated event log. ``kind``: ``product`` (app.py) or ``reference`` (a minimal Streamlit app that
    reads the same files with pandas and shows the same texts)."""
    import urllib.request

    from playwright.sync_api import sync_playwright

    tmp = tempfile.mkdtemp(prefix="bench_app_")
    if kind == "product":
        script, cwd = str(ROOT / "app.py"), str(ROOT)
    else:
        script = str(Path(tmp) / "reference_app.py")
        Path(script).write_text(f"SAMPLE = {str(ROOT / 'assets' / 'sample_events.csv.gz')!r}\n" + REFERENCE_APP)
        cwd = tmp
    port = _free_port()
    env = {**os.environ, "RETENTION_HOME": tmp, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "streamlit", "run", script, "--server.headless=true", f"--server.port={port}",
           "--server.address=127.0.0.1", "--browser.gatherUsageStats=false", "--server.fileWatcherType=none",
           "--server.maxUploadSize=500"]
    measures, info = {}, {}
    upload = Path(cache) / f"events_{upload_events}.csv.gz" if upload_events else None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page()
        main = page.locator('[data-testid="stMain"]')  # the page body, not the sidebar's help text
        t0 = time.perf_counter()
        server = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            while True:  # the server answers its health check
                if server.poll() is not None:
                    raise RuntimeError(f"streamlit exited: {server.stderr.read().decode()[-2000:]}")
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.05)
                if time.perf_counter() - t0 > 120:
                    raise TimeoutError("streamlit did not start in 120 s")
            measures["server_up"] = time.perf_counter() - t0
            page.goto(f"http://127.0.0.1:{port}/")
            main.get_by_text("What we understood", exact=True).first.wait_for(state="visible", timeout=120_000)
            measures["first_render"] = time.perf_counter() - t0
            measures["first_settled"] = _settled(page, t0)

            def to_train(name: str) -> None:
                t = time.perf_counter()
                page.locator('[data-testid="stSidebarNav"] a', has_text="Train").first.click()
                main.get_by_text("Train several retention models").first.wait_for(state="visible", timeout=120_000)
                measures[name] = time.perf_counter() - t
                measures[name + "_settled"] = _settled(page, t)

            to_train("nav_train")
            if upload is not None:
                t = time.perf_counter()
                page.locator('[data-testid="stSidebarNav"] a', has_text="Data").first.click()
                main.get_by_text("What we understood", exact=True).first.wait_for(state="visible", timeout=120_000)
                measures["nav_data"] = time.perf_counter() - t
                page.get_by_text("Upload a file", exact=True).first.click()
                page.get_by_text("Upload a file to begin").first.wait_for(state="visible", timeout=120_000)
                _settled(page, time.perf_counter())  # the sample's elements are gone, not merely stale
                main.get_by_text("What we understood", exact=True).first.wait_for(state="detached", timeout=120_000)
                t = time.perf_counter()
                page.locator('input[type="file"]').first.set_input_files(str(upload))
                main.get_by_text("What we understood", exact=True).first.wait_for(state="visible", timeout=900_000)
                measures["upload_render"] = time.perf_counter() - t
                measures["upload_settled"] = _settled(page, t)
                info["upload_mb"] = upload.stat().st_size / 1e6
                to_train("nav_train_upload")
            info["server_peak_rss_mb"] = _vm_hwm_mb(server.pid)
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
            browser.close()
    return {"measures": measures, "info": info}


# ---------------------------------------------------------------------------------------------------------- quality
def _quality_models(models):
    return "auto" if models == "auto" else list(models)


def step_quality_holdout(name: str, cutoff: str, models, epochs: int) -> dict:
    from bench.bench_quality import holdout

    models = _quality_models(models)
    params = {k: {"epochs": epochs} for k in models if k in DEEP} if models != "auto" else {}
    rows = holdout(name, cutoff, models, params=params, reference=models == "auto")
    return {"measures": {"train": rows[0]["train_seconds"]}, "info": {}, "rows": rows}


def step_quality_holdout_reference(name: str, cutoff: str) -> dict:
    import pandas as pd

    from bench.bench_quality import HOLDOUTS
    from bench.reference import rfm_holdout
    from retention_core.dataset import SnapshotConfig, build_dataset
    from retention_core.io import read_table
    from retention_core.dataset import training_cutoffs

    ev = _canonical(read_table(DATA / HOLDOUTS[name][0]))
    C = pd.Timestamp(cutoff)
    cfg = SnapshotConfig(horizon_days=90)
    truth = build_dataset(ev, cfg, cutoffs=[C])
    past = ev[ev["ts"] <= C].reset_index(drop=True)
    train_ds = build_dataset(past, cfg, cutoffs=training_cutoffs(past, cfg))
    score_frame = build_dataset(past, cfg, cutoffs=[C]).frame
    y = truth.frame["churned"].to_numpy()
    r = rfm_holdout(train_ds, score_frame, y)
    r.update(users=len(y), churn_rate=float(y.mean()))
    row = {"dataset": name, "cutoff": cutoff, "model": "reference: HGB on RFM + tenure", **r}
    return {"measures": {"train": r["train_seconds"]}, "info": {}, "rows": [row]}


def step_quality_telco(models, epochs: int) -> dict:
    from bench.bench_quality import telco

    models = _quality_models(models)
    params = {k: {"epochs": epochs} for k in models if k in DEEP} if models != "auto" else {}
    t = time.perf_counter()
    rows = telco(models, params=params)
    return {"measures": {"train": time.perf_counter() - t}, "info": {}, "rows": rows}


def step_quality_telco_reference() -> dict:
    from bench.reference import telco_cv
    from retention_core.io import read_table

    r = telco_cv(read_table(DATA / "telco_customer_churn.csv"))
    row = {"dataset": "telco", "cutoff": "5-fold CV", "model": "reference: HGB on all columns", **r,
           "churn_rate": None}
    return {"measures": {"train": r["train_seconds"]}, "info": {}, "rows": [row]}


STEPS = {name[5:]: fn for name, fn in globals().items() if name.startswith("step_")}


def child_main(step: str, params: str, result: str) -> int:
    import warnings

    warnings.filterwarnings("ignore")
    try:
        out = STEPS[step](**json.loads(params))
        out["measures"] = {k: v for k, v in out.get("measures", {}).items() if v is not None}
    except Exception as exc:  # reported in the results, the other steps go on
        out = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-4000:]}
    Path(result).write_text(json.dumps(out, default=str))
    return 0 if "error" not in out else 1


# ==================================================================================================== the runner
@dataclass
class Job:
    section: str
    key: str           # unique id of the measured thing, e.g. "features/1M/product"
    step: str
    params: dict
    once: bool = False  # quality: deterministic metrics, run a single time
    results: list = field(default_factory=list)
    peaks: list = field(default_factory=list)


def _job_of(j: dict, results: list | None = None) -> Job:
    """A job as ``results.json`` stores it (``results``: only these of its results)."""
    results = list(j["results"] if results is None else results)
    job = Job(j.get("section") or j["key"].split("/")[0].replace("export", "scoring"), j["key"], j["step"],
              j["params"], j.get("once", False), results)
    job.peaks = [r["peak_rss_mb"] for r in results if r.get("peak_rss_mb") is not None]
    return job


def _only(job: Job, keep) -> Job:
    """The same job with only the results for which ``keep(result)`` holds."""
    return _job_of({"section": job.section, "key": job.key, "step": job.step, "params": job.params,
                    "once": job.once, "results": []}, [r for r in job.results if keep(r)])


def run_job(job: Job, tmpdir: str, log) -> None:
    out = run_child_waiting(job, tmpdir)
    job.results.append(out)
    if out.get("peak_rss_mb") is not None:
        job.peaks.append(out["peak_rss_mb"])
    ms = ", ".join(f"{k} {v:.2f} s" for k, v in out.get("measures", {}).items())
    log(f"  {job.key}: {ms or ''}{'  ERROR ' + out['error'] if 'error' in out else ''}"
        f"  (peak {out.get('peak_rss_mb') or 0:,.0f} MB, {out['wall_seconds']:.0f} s wall)")


def run_child_waiting(job: Job, tmpdir: str) -> dict:
    """The child's peak RSS comes from wait4 on that very process, so no other step's memory is mixed in."""
    result = Path(tmpdir) / f"result_{time.monotonic_ns()}.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    errf = tempfile.TemporaryFile()
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bench.run", "--step", job.step, "--params",
                             json.dumps(job.params), "--result", str(result)], cwd=str(ROOT), env=env,
                            stdout=subprocess.DEVNULL, stderr=errf)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0  # reaped by wait4
    wall = time.perf_counter() - t
    if result.exists():
        out = json.loads(result.read_text())
        result.unlink()
    else:
        errf.seek(0)
        out = {"error": "the step process ended without a result: "
                        + errf.read().decode(errors="replace")[-1500:]}
    errf.close()
    out["peak_rss_mb"] = usage.ru_maxrss / 1024
    out["wall_seconds"] = wall
    return out


def plan(cfg: dict, sections: list[str], cache: str) -> tuple[list[Job], list[Job]]:
    """(preparation jobs, measured jobs) for the chosen sections."""
    prep: list[Job] = []
    jobs: list[Job] = []
    need_events: dict[int, bool] = {}
    if "features" in sections:
        for n in cfg["feature_events"]:
            need_events[n] = need_events.get(n, False)
            s = size_label(n)
            for variant in ("product", "full", "pandas", "lifetimes"):
                jobs.append(Job("features", f"features/{s}/{variant}", f"features_{variant}", {"cache": cache, "n": n}))
    if "training" in sections:
        for rows in cfg["train_rows"]:
            s = size_label(rows)
            jobs.append(Job("training", f"training/{s}/reference", "train_reference", {"rows": rows}))
            for key in cfg["train_models"]:
                jobs.append(Job("training", f"training/{s}/{key}", "train_model",
                                {"key": key, "rows": rows, "epochs": cfg["epochs"]}))
    if "scoring" in sections:
        n, u = cfg["score_events"], cfg["score_users"]
        need_events[n] = need_events.get(n, False)
        for v in ("product", "reference"):
            jobs.append(Job("scoring", f"scoring/{size_label(u)}/{v}", f"score_{v}",
                            {"cache": cache, "events": n, "users": u}))
        for v in ("product", "reference"):
            jobs.append(Job("scoring", f"export/{size_label(cfg['export_users'])}/{v}", f"export_{v}",
                            {"users": cfg["export_users"]}))
    if "shap" in sections:
        for key in cfg["shap_models"]:
            users = cfg["shap_users_deep"] if key in DEEP else cfg["shap_users"]
            p = {"key": key, "rows": cfg["shap_train_rows"], "users": users, "epochs": 1}
            for v in ("product", "reference"):
                jobs.append(Job("shap", f"shap/{key}/{v}", f"shap_{v}", p))
    if "app" in sections:
        n = cfg["app_upload_events"]
        if n:
            need_events[n] = True
        for v in ("product", "reference"):
            jobs.append(Job("app", f"app/{v}", "app", {"kind": v, "cache": cache, "upload_events": n}))
    if "quality" in sections:
        from bench.bench_quality import HOLDOUTS

        model_sets = [("auto", "auto")] + ([("deep", list(DEEP))] if cfg["quality_deep"] else [])
        for name, (_, cutoffs) in HOLDOUTS.items():
            for c in cutoffs[:cfg["quality_cutoffs"]]:
                for label, models in model_sets:
                    jobs.append(Job("quality", f"quality/{name}/{c}/{label}", "quality_holdout",
                                    {"name": name, "cutoff": c, "models": models, "epochs": 3}, once=True))
                jobs.append(Job("quality", f"quality/{name}/{c}/reference", "quality_holdout_reference",
                                {"name": name, "cutoff": c}, once=True))
        for label, models in [("auto", "auto")] + ([("deep", ["mlp"])] if cfg["quality_deep"] else []):
            jobs.append(Job("quality", f"quality/telco/{label}", "quality_telco", {"models": models, "epochs": 3},
                            once=True))
        jobs.append(Job("quality", "quality/telco/reference", "quality_telco_reference", {}, once=True))
    for n, csv in sorted(need_events.items()):
        prep.append(Job("prep", f"generate/{size_label(n)}", "generate", {"cache": cache, "n": n, "csv": csv}))
    return prep, jobs


# ---------------------------------------------------------------------------------------------------------- report
def _median(job: Job | None, measure: str) -> float | None:
    if job is None:
        return None
    vals = [r["measures"][measure] for r in job.results if measure in r.get("measures", {})]
    return statistics.median(vals) if vals else None


def _info(job: Job | None, name: str, default=None):
    for r in reversed(job.results if job else []):
        if name in r.get("info", {}):
            return r["info"][name]
    return default


def _peak(job: Job | None) -> float | None:
    return max(job.peaks) if job and job.peaks else None


def _fmt_s(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def _ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    if ratio <= 1:
        return f"{1 / ratio:.1f}× faster"
    return f"{ratio:.1f}× slower"


def build_report(jobs: list[Job], cfg: dict, mode: str, meta: dict) -> tuple[dict, str]:
    by = {j.key: j for j in jobs}
    rows: list[dict] = []

    def row(section, step, size, job, measure, ref_job, ref_measure, ref_label, note=""):
        s, r = _median(job, measure), _median(ref_job, ref_measure)
        errors = [x["error"] for x in ((job.results if job else []) + (ref_job.results if ref_job else []))
                  if "error" in x]
        rows.append({"section": section, "step": step, "size": size, "seconds": s, "reference": ref_label,
                     "reference_seconds": r, "ratio": (s / r) if s and r else None,
                     "peak_rss_mb": _peak(job), "reference_peak_rss_mb": _peak(ref_job),
                     "runs": len(job.results) if job else 0, "note": note, "errors": errors})

    for n in cfg["feature_events"]:
        s = size_label(n)
        p, pd_, lt = by.get(f"features/{s}/product"), by.get(f"features/{s}/pandas"), by.get(f"features/{s}/lifetimes")
        full = by.get(f"features/{s}/full")
        if p is None:
            continue
        cols, users = _info(p, "columns", "?"), _info(p, "users", 0)
        k, train_rows = _info(p, "training_cutoffs", "?"), _info(p, "training_rows", 0)
        same = f"pandas, the same {cols} columns (bench/reference_features.py)"
        row("features", f"Product: roles + canonical table + {cols} features, one cutoff", f"{s} events", p, "total",
            full, "build", same + ", from the canonical table", f"{users:,} users; the reference skips the cleaning")
        row("features", f"Product: {cols} features from the canonical table, one cutoff", f"{s} events", p, "build",
            full, "build", same, "like for like")
        row("features", f"Product: training set, {k} cutoffs 30 days apart", f"{s} events", p, "build_training",
            full, "build_training", same + ", once per cutoff", f"{train_rows:,} rows; like for like")
        row("features", f"Product: {cols} features from the canonical table, one cutoff", f"{s} events", p, "build",
            pd_, "build", "pandas groupby of 16 shared features only", "the reference computes a quarter of the columns")
        row("features", f"Product: {cols} features from the canonical table, one cutoff", f"{s} events", p, "build",
            lt, "build", _info(lt, "label", "lifetimes summary") + " (frequency, recency, T)",
            f"lifetimes covers {_info(lt, 'users', 0):,} users (every buyer, no lookback window)")
    for rows_n in cfg["train_rows"]:
        s = size_label(rows_n)
        ref = by.get(f"training/{s}/reference")
        for key in cfg["train_models"]:
            j = by.get(f"training/{s}/{key}")
            if j is None:
                continue
            note = ""
            if _info(j, "epochs_per_second") is not None:
                note = (f"{_info(j, 'epochs_per_second'):.2f} epochs/s ({_info(j, 'epochs')} epoch(s), "
                        f"{meta['cores']} cores)")
            row("training", f"Train {key}", f"{s} rows", j, "fit", ref, "fit", "default HistGradientBoosting fit",
                note)
    u = size_label(cfg["score_users"])
    p, r = by.get(f"scoring/{u}/product"), by.get(f"scoring/{u}/reference")
    if p is not None:
        ups = _info(p, "users_per_second")
        row("scoring", "Saved gbm bundle: predict_proba", f"{u} users", p, "model", r, "model",
            "plain HistGradientBoosting predict_proba (default, 100 trees)",
            (f"{ups:,.0f} users/s" if ups else "") + (f"; product model: {_info(p, 'trees')} trees"
                                                       if _info(p, "trees") else "")
            + (f"; both timed after a 1,000-user first call (product's: {_median(p, 'first_1000'):.2f} s)"
               if _median(p, "first_1000") is not None else ""))
        e2e = _info(p, "e2e_users_per_second")
        row("scoring", "score(run, event log): features as of the end + predict", f"{size_label(cfg['score_events'])} "
            "events", p, "e2e", r, "e2e", "canonical table + features + plain predict",
            f"{e2e:,.0f} users/s, {_info(p, 'scored_users', 0):,} users" if e2e else "")
    eu = size_label(cfg["export_users"])
    p, r = by.get(f"export/{eu}/product"), by.get(f"export/{eu}/reference")
    if p is not None:
        row("scoring", "At-risk CSV export (formula-safe, streamed)", f"{eu} users", p, "export", r, "export",
            "plain DataFrame.to_csv (not formula-safe)", f"{_info(p, 'csv_mb', 0):,.0f} MB CSV")
    for key in cfg["shap_models"]:
        p, r = by.get(f"shap/{key}/product"), by.get(f"shap/{key}/reference")
        if p is None:
            continue
        # runs of another method (merged from an earlier part, before a change of method) get their own row; the
        # reference is the latest one measured (an earlier part may have timed a plainer reference)
        if r is not None and r.results:
            latest = r.results[-1].get("info", {}).get("reference")
            r = _only(r, lambda x: x.get("info", {}).get("reference") == latest)
        methods = list(dict.fromkeys(x.get("info", {}).get("method", "?") for x in p.results))
        for method in methods:
            pm = _only(p, lambda x: x.get("info", {}).get("method", "?") == method)
            row("shap", f"SHAP per 1,000 users: {key} ({method})",
                f"{_info(pm, 'users', 0):,} users explained", pm, "per_1000", r, "per_1000",
                _info(r, "reference", "?") + (" (same background)" if _info(r, "reference") == "shap library directly"
                                              else ""),
                f"background {_info(pm, 'background', '?')}, {_info(pm, 'units', '?')} readable features")
    p, r = by.get("app/product"), by.get("app/reference")
    if p is not None:
        server = _info(p, "server_peak_rss_mb")
        up = cfg["app_upload_events"]

        def done(m):
            a, b = _median(p, m + "_settled"), _median(r, m + "_settled")
            return f"whole rerun finished: {_fmt_s(a)} s (reference {_fmt_s(b)} s)"

        row("app", "`streamlit run` to Data page rendered (sample)", "sample", p, "first_render", r, "first_render",
            "minimal Streamlit app, same texts",
            done("first") + (f"; server peak {server:,.0f} MB" if server else ""))
        row("app", "Sidebar click to Train rendered (sample)", "sample", p, "nav_train", r, "nav_train",
            "minimal Streamlit app, same texts", done("nav_train"))
        if up:
            row("app", "Upload to Data page rendered", f"{size_label(up)} events ({_info(p, 'upload_mb', 0):.0f} MB "
                "gz CSV)", p, "upload_render", r, "upload_render", "minimal app: pandas read_csv", done("upload"))
            row("app", "Sidebar click to Train rendered (after upload)", f"{size_label(up)} events", p,
                "nav_train_upload", r, "nav_train_upload", "minimal Streamlit app, same texts",
                done("nav_train_upload"))
    quality_rows = []
    for j in jobs:
        if j.section != "quality":
            continue
        for res in j.results:
            for q in res.get("rows", []):
                qr = {k: q.get(k) for k in ("dataset", "cutoff", "model", "roc_auc", "pr_auc", "users", "churn_rate")}
                if j.params.get("models", "auto") != "auto" and str(qr["model"]).startswith("auto ("):
                    # the pick within another model set (the neural networks) is not the product's `auto`
                    qr["model"] = "best neural network on validation " + str(qr["model"])[5:]
                if qr["roc_auc"] is None and q.get("validation_roc_auc") is not None:
                    qr["roc_auc"] = q["validation_roc_auc"]  # a model trained without cross-validation
                    qr["model"] = f"{qr['model']} (validation holdout, no CV)"
                quality_rows.append(qr)
            if "error" in res:
                quality_rows.append({"dataset": j.key, "model": "ERROR", "error": res["error"]})
        if j.key.endswith("/auto") or j.key.endswith("/reference") or j.key.endswith("/deep"):
            parts = j.key.split("/")
            label = "/".join(parts[1:-1])
            if parts[-1] != "reference":
                ref = by.get("/".join(parts[:-1]) + "/reference")
                row("quality", f"Train {parts[-1]} model set (product validation)", label, j, "train", ref, "train",
                    "HGB reference fit")

    targets = evaluate_targets(rows, quality_rows, cfg)
    result = {"mode": mode, "meta": meta, "config": cfg, "rows": rows, "quality": quality_rows, "targets": targets,
              "jobs": [{"section": j.section, "key": j.key, "step": j.step, "params": j.params, "once": j.once,
                        "results": j.results} for j in jobs]}
    return result, markdown(result)


def evaluate_targets(rows: list[dict], quality: list[dict], cfg: dict) -> list[dict]:
    from bench.bench_quality import MARGIN, REFERENCE_LR

    out = []

    def find(section, step_start, size_start=""):
        return [r for r in rows if r["section"] == section and r["step"].startswith(step_start)
                and r["size"].startswith(size_start)]

    biggest = size_label(max(cfg["feature_events"]))
    tot = find("features", "Product: roles", biggest)
    scale = "" if biggest == "10M" else f" (measured at {biggest}; the target is for 10M)"
    judged = biggest == "10M"  # quick mode measures smaller logs: the value is shown, not judged
    if tot:
        s = tot[0]["seconds"]
        out.append({"target": "Features for 10M events under 20 s (cleaning included)" + scale,
                    "value": f"{_fmt_s(s)} s", "pass": bool(s is not None and s < 20) if judged else None})
    like = [r for r in find("features", "Product:", biggest) if r["note"].endswith("like for like")]
    for r in like:
        what = "one cutoff" if "one cutoff" in r["step"] else "training set"
        out.append({"target": f"Features at least 3× faster than the pandas reference ({what}, same columns)" + scale,
                    "value": _ratio_text(r["ratio"]),
                    "pass": bool(r["ratio"] is not None and r["ratio"] <= 1 / 3) if judged else None,
                    "indicative": bool(r["ratio"] is not None and r["ratio"] <= 1 / 3)})
    sc = find("scoring", "Saved gbm bundle")
    if sc and sc[0]["seconds"]:
        ups = cfg["score_users"] / sc[0]["seconds"]
        out.append({"target": "Saved gradient-boosting bundle scores at least 200k users/s", "value": f"{ups:,.0f}/s",
                    "pass": ups >= 200_000})
    app = find("app", "`streamlit run`")
    if app:
        s = app[0]["seconds"]
        out.append({"target": "App first render under 6 s", "value": f"{_fmt_s(s)} s",
                    "pass": bool(s is not None and s < 6)})
    groups: dict[tuple, dict] = {}
    for q in quality:
        if q.get("roc_auc") is None or q.get("model") in (None, "ERROR"):
            continue
        g = groups.setdefault((q["dataset"], q["cutoff"]), {"auto": None, "baselines": [], "reference": None})
        if str(q["model"]).startswith("auto"):
            g["auto"] = (q["model"], q["roc_auc"])
        elif q["model"] in ("recency", "bgnbd"):
            g["baselines"].append((q["model"], q["roc_auc"]))
        elif q["model"] == REFERENCE_LR:
            g["reference"] = (q["model"], q["roc_auc"])
    for (ds, cut), g in groups.items():
        if g["auto"] is not None and not g["baselines"]:
            out.append({"target": f"`auto` at or above the best baseline: {ds} {cut}",
                        "value": "no baseline applies (a user table: recency and BG/NBD need an event log)",
                        "pass": None})
        if g["auto"] is None or not g["baselines"]:
            continue
        rivals = g["baselines"] + ([g["reference"]] if g["reference"] else [])
        best = max(rivals, key=lambda b: b[1] if b[1] == b[1] else -1)
        out.append({"target": f"`auto` at least {MARGIN} above the best baseline and the logistic reference: "
                              f"{ds} {cut}",
                    "value": f"{g['auto'][0]} {g['auto'][1]:.4f} vs {best[0]} {best[1]:.4f} "
                             f"({g['auto'][1] - best[1]:+.4f})",
                    "pass": bool(g["auto"][1] >= best[1] + MARGIN)})
    return out


SECTION_TITLES = {"features": "1. Feature building from events", "training": "2. Training time per model family",
                  "scoring": "3. Scoring and export", "shap": "4. SHAP explanations",
                  "app": "5. App (Chromium, headless)", "quality": "Training time on real data (section 6)"}


def _num(v, digits=4):
    return "—" if v is None or v != v else f"{v:.{digits}f}"


def markdown(result: dict) -> str:
    meta, rows = result["meta"], result["rows"]
    lines = [f"# Benchmark results ({result['mode']} mode)", "",
             f"{meta['date']}; {meta['cores']} CPU cores; {meta['platform']}; Python {meta['python']}; "
             f"median of {meta['runs']} run(s) per step (quality: one run); each step in a fresh process; "
             f"total {meta['total_seconds'] / 60:.1f} min.", "",
             "Ratio: the product's time against the reference measured in the same run. Peak RSS: the step's own "
             "process and the processes it started (data set-up included).", ""]
    for sec in SECTIONS[:-1] + ("quality",):
        sec_rows = [r for r in rows if r["section"] == sec]
        if not sec_rows:
            continue
        lines += [f"## {SECTION_TITLES[sec]}", "",
                  "| step | size | seconds | reference | ref. seconds | vs reference | peak RSS MB | notes |",
                  "|---|---|---:|---|---:|---|---:|---|"]
        for r in sec_rows:
            note = r["note"] + ("; ERROR: " + "; ".join(e[:160] for e in r["errors"]) if r["errors"] else "")
            peak = f"{r['peak_rss_mb']:,.0f}" if r["peak_rss_mb"] else "—"
            lines.append(f"| {r['step']} | {r['size']} | {_fmt_s(r['seconds'])} | {r['reference']} | "
                         f"{_fmt_s(r['reference_seconds'])} | {_ratio_text(r['ratio'])} | {peak} | {note} |")
        lines.append("")
    if result["quality"]:
        lines += ["## 6. Model quality on real data", "",
                  "Event logs: time holdout (trained on the log cut at the cutoff, scored against the next 90 days). "
                  "Telco: 5-fold CV. `auto` is the model the product picks on its own validation. The reference is "
                  "a default scikit-learn HistGradientBoostingClassifier trained by hand (event logs: recency, "
                  "orders, revenue and tenure, on the latest labelled snapshot; Telco: every column).", "",
                  "| dataset | cutoff | model | ROC-AUC | PR-AUC | users | churn rate |",
                  "|---|---|---|---:|---:|---:|---:|"]
        for q in result["quality"]:
            if q.get("model") == "ERROR":
                lines.append(f"| {q['dataset']} | | ERROR | {q.get('error', '')[:200]} | | | |")
                continue
            users = f"{q['users']:,}" if q.get("users") else ""
            lines.append(f"| {q['dataset']} | {q['cutoff']} | {q['model']} | {_num(q.get('roc_auc'))} | "
                         f"{_num(q.get('pr_auc'))} | {users} | {_num(q.get('churn_rate'), 3)} |")
        lines.append("")
    if result["targets"]:
        lines += ["## Targets", "", "| target | measured | result |", "|---|---|---|"]
        for t in result["targets"]:
            if t["pass"] is None:
                verdict = "not judged" + ("" if "indicative" not in t else
                                          f" (indicative: {'pass' if t['indicative'] else 'fail'})")
            else:
                verdict = "pass" if t["pass"] else "**FAIL**"
            lines.append(f"| {t['target']} | {t['value']} | {verdict} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="small sizes, one run per step (the default)")
    g.add_argument("--full", action="store_true", help="1M and 10M events, three runs per step")
    ap.add_argument("--out", default=str(Path("bench") / "results"), help="folder for results.json and results.md")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    ap.add_argument("--runs", type=int, help="runs per step (default: 1 quick, 3 full)")
    ap.add_argument("--cache", help="folder for generated event logs (default: OUT/cache; reused between runs)")
    ap.add_argument("--rebuild", action="store_true",
                    help="only rewrite OUT/results.md (and the summary in results.json) from OUT/results.json")
    ap.add_argument("--merge", help="comma-separated OUT folders of partial runs (FOLDER:features+app for some "
                    "sections of one): write one report to --out")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--params", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.step:
        return child_main(a.step, a.params or "{}", a.result)

    mode = "full" if a.full else "quick"
    cfg = dict(MODES[mode])
    if a.runs:
        cfg["runs"] = a.runs
    sections = [s.strip() for s in a.only.split(",") if s.strip()]
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        ap.error(f"unknown section(s) {bad}; choose from {list(SECTIONS)}")
    out = Path(a.out)
    if a.merge:
        return merge([x for x in a.merge.split(",") if x], out)
    if a.rebuild:
        return rebuild(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(a.cache) if a.cache else out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f} s] {msg}", flush=True)

    prep, jobs = plan(cfg, sections, str(cache.resolve()))
    with tempfile.TemporaryDirectory() as tmp:
        log(f"{mode} mode: {len(jobs)} steps x {cfg['runs']} run(s); {os.cpu_count()} cores; sections {sections}")
        for job in prep:
            run_job(job, tmp, log)
        for i in range(cfg["runs"]):
            log(f"run {i + 1} of {cfg['runs']}")
            for job in jobs:
                if job.once and i > 0:
                    continue
                run_job(job, tmp, log)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "runs": cfg["runs"], "sections": sections,
            "total_seconds": time.perf_counter() - t_start,
            "prep": {j.key: j.results[-1].get("info") for j in prep if j.results}}
    result, md = build_report(jobs, cfg, mode, meta)
    agree = agreement(cache, cfg) if "features" in sections else {}
    result["meta"]["feature_agreement"] = agree
    if agree:
        md += "\n" + "\n".join(f"- Agreement at {k}: {v}" for k, v in agree.items()) + "\n"
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "results.md").write_text(md)
    log(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    print(md)
    return 0


def _part(spec: str) -> tuple[Path, set[str] | None]:
    """A merge part: ``FOLDER`` (all its sections) or ``FOLDER:features+app`` (only these sections, e.g. when a later
    part measured the others again after a change)."""
    folder, _, keep = spec.partition(":")
    return Path(folder), set(keep.split("+")) if keep else None


def _select(result: dict, keep: set[str] | None) -> dict:
    if keep is None:
        return result
    unknown = keep - set(result["meta"]["sections"])
    if unknown:
        raise SystemExit(f"error: the part has no section(s) {sorted(unknown)}; it has {result['meta']['sections']}")
    return {**result, "jobs": [j for j in result["jobs"] if _job_of(j).section in keep],
            "meta": {**result["meta"], "sections": [x for x in result["meta"]["sections"] if x in keep],
                     "feature_agreement": result["meta"].get("feature_agreement") if "features" in keep else {}}}


def merge(specs: list[str], out: Path) -> int:
    """One report from several partial runs of the same mode (e.g. ``--only features,scoring,app`` with three runs and
    ``--only training,shap,quality --runs 1``): the steps of every part, each with its own number of runs (see
    :func:`_part` to take some sections of a part only)."""
    parts = [_part(x) for x in specs]
    olds = [_select(json.loads((p / "results.json").read_text()), keep) for p, keep in parts]
    modes = {o["mode"] for o in olds}
    if len(modes) != 1:
        raise SystemExit(f"error: the parts mix modes {sorted(modes)}; merge runs of one mode only")
    jobs, sections, runs, total, agree = [], [], [], 0.0, {}
    by_key: dict[str, Job] = {}
    for o in olds:
        for j in o["jobs"]:
            if j["key"] in by_key:  # the same step in another part: more runs of it
                job = by_key[j["key"]]
                job.results.extend(j["results"])
                job.peaks = _job_of(j, job.results).peaks
                continue
            by_key[j["key"]] = _job_of(j)
            jobs.append(by_key[j["key"]])
        sections += [s for s in o["meta"]["sections"] if s not in sections]
        runs.append(f"{o['meta']['runs']} ({', '.join(o['meta']['sections'])})")
        total += o["meta"]["total_seconds"]
        agree.update(o["meta"].get("feature_agreement") or {})
    cfg = dict(olds[0]["config"])
    for o in olds[1:]:
        for k, v in o["config"].items():
            cfg.setdefault(k, v)
    for job in jobs:  # folders of the machine that ran it say nothing to a reader
        if "cache" in job.params:
            job.params = {**job.params, "cache": "OUT/cache"}
    meta = {**olds[-1]["meta"], "runs": "; ".join(runs), "sections": sections, "total_seconds": total,
            "date": max(o["meta"]["date"] for o in olds), "feature_agreement": agree,
            "parts": [p.name + (":" + "+".join(sorted(keep)) if keep else "") for p, keep in parts]}
    result, md = build_report(jobs, cfg, olds[0]["mode"], meta)
    if agree:
        md += "\n" + "\n".join(f"- Agreement at {k}: {v}" for k, v in agree.items()) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "results.md").write_text(md)
    print(md)
    return 0


def rebuild(out: Path) -> int:
    """The report again from the measurements already in ``results.json`` (after a change to the report only)."""
    old = json.loads((out / "results.json").read_text())
    jobs = [_job_of(j) for j in old["jobs"]]
    result, md = build_report(jobs, old["config"], old["mode"], old["meta"])
    agree = old["meta"].get("feature_agreement") or {}
    if agree:
        md += "\n" + "\n".join(f"- Agreement at {k}: {v}" for k, v in agree.items()) + "\n"
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "results.md").write_text(md)
    print(md)
    return 0


def agreement(cache: Path, cfg: dict) -> dict:
    """How often the product agrees with the references on the shared features (same users, same cutoff)."""
    import numpy as np
    import pandas as pd

    out = {}
    for n in cfg["feature_events"]:
        try:
            p = pd.read_parquet(cache / f"product_features_{n}.parquet").set_index("user_id")
            r = pd.read_parquet(cache / f"pandas_features_{n}.parquet")
            lt = pd.read_parquet(cache / f"lifetimes_summary_{n}.parquet")
        except OSError:
            continue
        common = r.index.intersection(p.index)
        o90 = float(np.mean(p.loc[common, "orders_90d"].to_numpy() == r.loc[common, "orders_90d"].to_numpy()))
        both = lt.join(p, how="inner")
        freq = float(np.mean(both["frequency"].to_numpy() == both["repeat_purchases"].to_numpy()))
        ten = float(np.mean(np.abs(both["T"].to_numpy() - both["tenure_days"].to_numpy()) < 1))
        text = (f"pandas orders_90d equal for {o90:.2%} of {len(common):,} shared users; lifetimes "
                f"frequency = repeat_purchases for {freq:.2%}, T within a day of tenure_days for "
                f"{ten:.2%} of {len(both):,} shared users")
        full = cache / f"full_features_{n}.parquet"
        if full.exists():
            from bench.reference_features import differences

            f = pd.read_parquet(full)
            attrs = [c for c in f.columns if not pd.api.types.is_numeric_dtype(f[c])
                     and c not in ("user_id", "snapshot_date")]
            problems = differences(p.reset_index(), f, attrs)
            text = (f"pandas full reference: {'all ' + str(len(f.columns)) + ' columns equal (1e-9) for all ' if not problems else 'DIFFERS: ' + '; '.join(problems[:3]) + ' — '}"
                    f"{len(f):,} users; " + text)
        out[size_label(n)] = text
    return out


if __name__ == "__main__":
    raise SystemExit(main())
