"""Command line: ``python -m retention_core inspect | build-dataset | train | score | serve`` (the calls the app
makes, and the scoring service).

Exit status 0 on success; 2 on bad input or usage, with one ``error: ...`` line on stderr and no traceback; 1 on an
internal failure (set ``RETENTION_DEBUG=1`` to see its traceback).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import TYPE_CHECKING

from . import control
from .monitor_cli import cmd_monitor, monitor_parser
from .bundle import load_run
from .dataset import (
    SnapshotConfig,
    build_dataset,
    default_config,
    training_cutoffs,
    user_dataset,
)
from .errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, RetentionError, UsageError
from .events import canonical_events
from .export import format_dates, write_table
from .io import read_table
from .models import REGISTRY
from .roles import infer_schema
from .validation import validate, validate_dataset

if TYPE_CHECKING:
    from .training import TrainProgress



class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints the whole usage otherwise)
        raise UsageError(f"{message} (see --help)")


#: The one table of column roles and their options: the parser, the overrides and the error wording read it.
ROLE_FLAGS = {"user_id": ("--user-col", "user id column"), "timestamp": ("--time-col", "timestamp column"),
              "order_id": ("--order-col", "order / invoice id column"),
              "amount": ("--amount-col", "line or order value column"), "quantity": ("--quantity-col", "quantity column"),
              "price": ("--price-col", "unit price column"), "event_type": ("--event-col", "event type column"),
              "product": ("--product-col", "product column"), "category": ("--category-col", "category column"),
              "description": ("--description-col", "product name column (shown with offers)")}
#: Request fields of library errors (``RetentionError.field``) and the option that sets each.
FIELD_FLAGS = {"top": "--top", "threshold": "--threshold", "contacts": "--contacts", "share": "--contacts",
               "audience": "--audience", "reasons": "--reasons", "as_of": "--as-of", "cutoff": "--cutoff", "horizon_days": "--horizon", "lookback_days": "--lookback",
               "n_snapshots": "--snapshots", "step_days": "--step", "label": "--label", "model": "--model",
               "sheet": "--sheet", "offers": "--offers", "control_share": "--control-share", "seed": "--seed",
               "cost_per_contact": "--cost-per-contact", "treatment": "--treatment", "control_value": "--control-value",
               "treatment_value": "--treatment-value", "positive": "--positive", "exclude": "--exclude",
               "holdout": "--holdout", "models": "--models", "user_id": "--user-col",
               "campaign_days": "--campaign-days", "keep_columns": "--keep-column"}


def _role_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("columns (anything not given is inferred)")
    g.add_argument("--sheet", help="Excel sheet to read (default: the sheet holding the main table; inspect says "
                   "which and why)")
    g.add_argument("--kind", choices=["events", "users"], help="force the table kind")
    for flag, what in ROLE_FLAGS.values():
        g.add_argument(flag, help=what)
    g.add_argument("--purchase-value", action="append",
                   help="event type value that counts as a purchase (repeat or comma-separate for several)")
    g.add_argument("--keep-column", action="append", metavar="COL",
                   help="user tables: put back as a feature a column left out as an identifier (a row number, an id, "
                        "names; inspect lists them); repeat or comma-separate for several")


def _snapshot_options(p: argparse.ArgumentParser, *, cutoff: bool = True) -> None:
    g = p.add_argument_group("snapshots (event logs)")
    if cutoff:
        g.add_argument("--cutoff", help="latest labelled cutoff, YYYY-MM-DD (default: the last date whose horizon is "
                       "fully observed)")
        g.add_argument("--snapshots", type=int, help="number of snapshots T, T - step, ... (default: suited to the data)")
        g.add_argument("--step", type=int, help="days between snapshots (default 30)")
    g.add_argument("--horizon", type=int, help="days after the cutoff in which a purchase means retained (default 90)")
    g.add_argument("--lookback", type=int, help="days before the cutoff in which a user must have bought (default 365)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m retention_core", description="Retention studio from the command line.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    sub.required = True

    s = sub.add_parser("inspect", help="what a file is, its column roles and data quality issues")
    s.add_argument("data")
    s.add_argument("--json", action="store_true", help="print JSON")
    _role_options(s)

    s = sub.add_parser("build-dataset", help="turn an event log (or a user table) into a labelled dataset")
    s.add_argument("data")
    s.add_argument("--out", required=True, help="output file (.csv, .csv.gz or .parquet)")
    _role_options(s)
    s.add_argument("--label", help="label column (user tables)")
    s.add_argument("--positive", help="label value that means churned (user tables)")
    _snapshot_options(s)
    _engine_options(s)

    s = sub.add_parser("train", help="train and compare models; save the run")
    s.add_argument("data")
    s.add_argument("--out", required=True, help="run folder to write")
    _role_options(s)
    s.add_argument("--label", help="label column (user tables; with --treatment: the outcome column)")
    s.add_argument("--positive", help="label value that means churned (user tables; with --treatment: the value "
                   "that means the outcome happened)")
    _snapshot_options(s)
    s.add_argument("--models", default="auto", help="'auto' or a comma-separated list of model keys (with --treatment: "
                   "uplift learners: two_model, two_model_gbm, class_transformation, dr_learner, x_learner)")
    s.add_argument("--metric", default="roc_auc", help="metric that picks the best model (default roc_auc)")
    s.add_argument("--calibrate", choices=["none", "isotonic", "sigmoid"], default="none")
    s.add_argument("--backtest", type=int, default=0, help="also validate at N earlier cutoffs (event logs)")
    s.add_argument("--refit", action=argparse.BooleanOptionalAction, default=True,
                   help="after validation, refit the kept models on the most recent labelled snapshots, the validation "
                        "one included, carrying early-stopping counts, calibration and threshold (default; "
                        "--no-refit saves the models exactly as validated)")
    s.add_argument("--epochs", type=int, help="epochs for deep models")
    s.add_argument("--tune-budget", type=float, metavar="SECONDS",
                   help="seconds to search the settings of logistic regression, random forest and gradient boosting "
                        "inside the training rows (default 90 with --models auto, else 0; 0 = their fixed defaults)")
    s.add_argument("--seed", type=int, default=0)
    _uplift_options(s)

    _score_parser(sub)
    monitor_parser(sub)
    _recommend_parser(sub)

    # --- serve (the scoring service, retention_core.serve) ---
    s = sub.add_parser("serve", help="answer churn-scoring requests over HTTP from a saved run")
    s.add_argument("run")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    s.add_argument("--workers", type=int, default=1, help="worker processes, one per core (default 1)")
    s.add_argument("--model", metavar="KEY", help="serve this model of the run (default: its best; GET /v1/model "
                   "says which is served)")
    return p


def _score_parser(sub) -> None:
    s = sub.add_parser("score", help="score new data with a saved run")
    s.add_argument("run")
    s.add_argument("data")
    s.add_argument("--out", required=True, help="output CSV")
    s.add_argument("--sheet", help="Excel sheet to score (default: the sheet holding the main table)")
    s.add_argument("--as-of", help="score as of this date (event logs; default: the end of the data)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--top", type=int, help="keep the K users most at risk (uplift runs: with the highest uplift)")
    g.add_argument("--threshold", type=float, help="keep users with churn probability at or above P (uplift runs: "
                   "with uplift at or above P, e.g. 0 for everyone a contact is expected to help)")
    g.add_argument("--contacts", metavar="N|P%", help="keep N users (or P%% of those scored, e.g. 10%%) ranked by "
                   "the expected net value of a contact (save rate 10%%, cost 1 per contact), or by uplift when the "
                   "run estimates it")
    s.add_argument("--audience", choices=["all", "saveable", "winback"], default="all",
                   help="whose scores to keep: everyone (default), those who can still be saved (every stage but "
                        "lapsed) or the lapsed (a win-back audience)")
    s.add_argument("--reasons", type=int, default=0, help="add the top N reasons per user")
    s.add_argument("--model", help="score with this model of the run (default: the run's best; the leaderboard and "
                                   "metrics.json list the keys)")
    s.add_argument("--offers", type=int, default=0, metavar="N",
                   help="add offer_1..offer_N: the top N product offers per user (event logs with a product column)")
    s.add_argument("--pseudonymise-key-env", metavar="VAR",
                   help="replace user ids by keyed pseudonyms (HMAC-SHA256) using the key in environment variable VAR "
                        "(the key never appears on the command line)")
    s.add_argument("--readable", action="store_true", help="round probabilities to 4 decimals, as the app's downloads "
                   "and the --contact-out file do (default: exact, the figures the service answers; amounts are "
                   "always rounded to 2 decimals with their unit)")
    s.add_argument("--no-record", action="store_true", help="do not record this scoring in the workspace's scoring "
                   "history (RETENTION_WORKSPACE/history.duckdb), which monitor reads")
    g = s.add_argument_group("control group (a campaign's proof: monitor compares the two groups after the horizon)")
    g.add_argument("--control-share", type=float, metavar="S", help="hold out a random share S of the list (0 < S "
                   "< 1), stratified by risk decile and stage; adds a group column: contact or control")
    g.add_argument("--seed", type=int, metavar="N", help="seed of the draw (default: the scoring date as a number, "
                   "e.g. 20240802); the same list and seed give the same groups")
    g.add_argument("--contact-out", metavar="FILE", help="also write the list without its control rows, for a "
                   "campaign tool")
    g.add_argument("--campaign-days", type=int, metavar="D", help="the campaign's window: monitor judges it on "
                   f"purchases in the D days after the scoring date (default {control.DEFAULT_DAYS})")
    _engine_options(s)


# --- uplift (treatment-effect learners on a randomised experiment, retention_core/uplift) ---------------------------
def _uplift_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("uplift (a table with a treatment column: who a contact persuades)")
    g.add_argument("--treatment", metavar="COL", help="treatment column: train uplift learners of the effect of the "
                   "contact on the outcome --label/--positive instead of churn models")
    g.add_argument("--control-value", metavar="VALUE", help="the value of --treatment that marks the control group")
    g.add_argument("--treatment-value", metavar="VALUE", help="the treated arm (default: every arm but the control, "
                   "pooled; the rows of other arms are then left out)")
    g.add_argument("--exclude", action="append", metavar="COL", help="columns the learners must not read (repeat or "
                   "comma-separate); columns that record the outcome are found and left out anyway")
    g.add_argument("--holdout", type=float, default=0.3, help="share of customers held out to judge the learners "
                   "(default 0.3)")


def cmd_train_uplift(args) -> int:
    """``train DATA --treatment COL --control-value V --label COL [--positive P]``: uplift learners, judged on held-out
    customers by the Qini area beside random and response targeting, saved as a run."""
    from .uplift.data import Experiment  # scikit-learn: loaded by the commands that model only
    from .uplift.training import UpliftConfig, refit_text, train_uplift_and_save

    if args.control_value is None:
        raise UsageError("--treatment needs --control-value: the value that marks the control group")
    if not args.label:
        raise UsageError("--treatment needs --label: the outcome column (e.g. visit) and --positive, the value that "
                         "means it happened")
    t0 = time.perf_counter()
    df = read_table(args.data, sheet=args.sheet)
    exclude = [x.strip() for v in args.exclude or [] for x in v.split(",") if x.strip()]
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    cfg = UpliftConfig(learners="auto" if keys in (["auto"], []) else keys, holdout=args.holdout, seed=args.seed,
                       refit=args.refit)
    exp = Experiment(args.treatment, args.control_value, args.label, args.positive, args.treatment_value)
    result, _ = train_uplift_and_save(args.out, df, exp, cfg, user_col=args.user_col, exclude=exclude,
                                      digest=df.attrs.get("digest", ""), progress=_print_progress)
    data = result.data
    print(f"experiment: outcome {data.experiment.outcome} = {data.positive}; {data.arms_text()}")
    for why, n in data.left_out.items():
        print(f"note: {n:,} rows left out ({why})")
    for col, why in data.outcome_columns.items():
        print(f"note: column {col} left out: {why} (it records the outcome, measured after the contact)")
    print(f"ids: {'column ' + data.id_column if data.id_column else 'row numbers (1 = the first data row)'}")
    print(f"validation: {result.scheme}")
    print(refit_text(result.refit))
    cols = ["model", "kind", "qini_area", "qini_coefficient", "uplift_top10", "uplift_top30"]
    print(result.leaderboard[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for k, v in result.errors.items():
        print(f"warning: {k} failed: {v}")
    print(f"best learner: {result.best}; saved to {args.out} in {time.perf_counter() - t0:.1f} s")
    return EXIT_OK


def cmd_score_uplift(run, args) -> int:
    """``score`` on an uplift run: uplift, p_treated and p_control per customer, highest uplift first."""
    from .export import pseudonymise_list, readable_list
    from .uplift.scoring import score_uplift_file

    for flag, given in (("--reasons", args.reasons), ("--offers", args.offers), ("--as-of", args.as_of),
                        ("--engine spark", args.engine == "spark")):
        if given:
            raise UsageError(f"{flag} does not apply to an uplift run (it scores customers of a table, by uplift)")
    t0 = time.perf_counter()
    df = read_table(args.data, sheet=args.sheet)
    result = score_uplift_file(run, df, model=args.model, top=args.top, threshold=args.threshold)
    out = result.chosen
    if args.pseudonymise_key_env:
        out = pseudonymise_list(out, os.environ[args.pseudonymise_key_env])
    write_table(readable_list(out, probabilities=args.readable), args.out)
    positive = int((result.scores["uplift"] > 0).sum())
    print(f"scored {len(result.scores):,} customers with uplift learner {result.model} ({positive:,} with a positive "
          f"uplift); wrote {len(out):,} rows to {args.out} in {time.perf_counter() - t0:.1f} s")
    print("note: scorings of uplift runs are not recorded in the scoring history")
    return EXIT_OK
# --- end of uplift ---------------------------------------------------------------------------------------------------


# --- engine options (the Spark engine lives in retention_core/spark; PySpark and Java are optional) ----------------
def _engine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb",
                   help="where features are built: duckdb (embedded, the default) or spark (for logs beyond one "
                        "machine; a Parquet file or folder is then read by Spark itself)")
    g.add_argument("--spark-master", metavar="URL",
                   help="Spark master for --engine spark (default local[*]; e.g. spark://host:7077, yarn)")
# --- end of engine options -----------------------------------------------------------------------------------------


def overrides_from_args(args: argparse.Namespace) -> dict:
    ov: dict = {role: getattr(args, flag[2:].replace("-", "_"), None) for role, (flag, _) in ROLE_FLAGS.items()}
    ov = {role: col for role, col in ov.items() if col}
    if getattr(args, "label", None):
        ov["label"] = args.label
    if getattr(args, "kind", None):
        ov["kind"] = args.kind
    if getattr(args, "purchase_value", None):
        ov["purchase_values"] = [x.strip() for v in args.purchase_value for x in v.split(",") if x.strip()]
    if getattr(args, "positive", None) is not None:
        ov["label_positive"] = _typed(args.positive)
    if getattr(args, "keep_column", None):
        ov["keep_columns"] = [x.strip() for v in args.keep_column for x in v.split(",") if x.strip()]
    return ov


def _typed(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def snapshot_config(args: argparse.Namespace, ev) -> SnapshotConfig:
    base = default_config(ev)
    kw = base.as_dict()
    for arg, key in (("horizon", "horizon_days"), ("lookback", "lookback_days"), ("snapshots", "n_snapshots"),
                     ("step", "step_days"), ("cutoff", "cutoff")):
        v = getattr(args, arg, None)
        if v is not None:
            kw[key] = v
    if getattr(args, "horizon", None) is not None and getattr(args, "lookback", None) is None:
        kw["lookback_days"] = 365
    return SnapshotConfig(**kw)


def load(args: argparse.Namespace):
    """Read DATA, infer the schema with the overrides and validate it."""
    df = read_table(args.data, sheet=getattr(args, "sheet", None))
    schema = infer_schema(df, overrides_from_args(args))
    return df, schema, validate(df, schema)


def _fail_on_errors(report) -> None:
    if report.errors:
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more problem(s); run inspect)" if len(report.errors) > 1 else ""
        raise RetentionError(f"{first.message}: {first.action}{more}", roles=[first.role] if first.role else [])


def _id_notes(report) -> None:
    """The identifiers left out of a user table's features (and those put back), one note each on stderr."""
    for f in report.findings:
        if f.code == "identifier_feature":
            print(f"note: {f.message}; left out of the features (--keep-column {f.examples[0]} to use it)",
                  file=sys.stderr)
        elif f.code == "identifier_kept":
            print(f"note: {f.message}: {f.action}", file=sys.stderr)


def cmd_inspect(args) -> int:
    df, schema, report = load(args)
    info = df.attrs.get("read_info", {})
    out = {"kind": schema.kind, "rows": int(len(df)), "roles": {k: v for k, v in schema.roles.items() if v},
           "columns": [str(c) for c in df.columns], "issues": report.as_list(),
           "attributes": schema.attributes, "label_positive": schema.label_positive,
           "purchase_values": schema.purchase_values, "id_columns": schema.id_columns, "users": int(df[schema.roles["user_id"]].nunique())
           if schema.roles.get("user_id") else None, "read": info}
    if args.json:
        print(json.dumps(out, default=str, indent=1))
        return EXIT_OK
    print(f"{info.get('name', args.data)}: {'event log' if schema.kind == 'events' else 'user table'}, "
          f"{len(df):,} rows x {len(df.columns)} columns" + (f", {out['users']:,} users" if out["users"] else ""))
    if info.get("sheet") is not None:
        print(f"sheet: {info['sheet']!r} (of {len(info.get('sheets') or [])}), {info.get('sheet_reason')}")
    print("roles:")
    for role, col in out["roles"].items():
        print(f"  {role:<11} {col}")
    if schema.attributes:
        print(f"attributes: {', '.join(schema.attributes)}")
    if schema.purchase_values:
        print(f"purchases: event types {', '.join(schema.purchase_values)}")
    print("issues:")
    for f in report.sorted():
        ex = f" e.g. {', '.join(map(str, f.examples[:3]))}" if f.examples else ""
        act = f" -> {f.action}" if f.action else ""
        print(f"  [{f.severity}] {f.message}{ex}{act}")
    return EXIT_OK


def _spark_dataset(args):
    """``build-dataset --engine spark``: a Parquet file or folder is read by Spark itself (the log never passes
    through pandas); another file is read by the product's reader and sent to Spark. A user table needs no engine."""
    from . import spark  # PySpark is optional: loaded by the commands that ask for it

    if spark.is_parquet_source(args.data):
        session = spark.get_session(args.spark_master)
        events, schema, report = spark.read_parquet_events(session, args.data, overrides_from_args(args))
        _fail_on_errors(report)
    else:
        df, schema, report = load(args)
        _fail_on_errors(report)
        if schema.kind != "events":
            return user_dataset(df, schema, report)
        events = spark.SparkEvents.from_pandas(spark.get_session(args.spark_master), canonical_events(df, schema))
    return spark.build_dataset(events, snapshot_config(args, events.bounds()))


def cmd_build_dataset(args) -> int:
    t0 = time.perf_counter()
    if args.engine == "spark":
        ds = _spark_dataset(args)
    else:
        df, schema, report = load(args)
        _fail_on_errors(report)
        if schema.kind == "events":
            ev = canonical_events(df, schema)
            cfg = snapshot_config(args, ev)
            ds = build_dataset(ev, cfg)
        else:
            _id_notes(report)
            ds = user_dataset(df, schema, report)
    out = format_dates(ds.frame)
    out["churned"] = out["churned"].astype("Int64")  # 0/1, empty where the horizon is not observed yet
    write_table(out, args.out)
    s = ds.summary()
    for _, r in s.iterrows():
        when = r["snapshot_date"].date() if hasattr(r["snapshot_date"], "date") else r["snapshot_date"]
        rate = "not labelled yet" if r["labelled"] == 0 else f"churn {r['churn_rate']:.1%}"
        print(f"snapshot {when}: {int(r['users']):,} users, {rate}")
    for f in validate_dataset(ds.frame).findings:
        print(f"warning: {f.message}", file=sys.stderr)
    print(f"wrote {len(ds.frame):,} rows x {len(ds.frame.columns)} columns to {args.out} "
          f"in {time.perf_counter() - t0:.1f} s")
    return EXIT_OK


def cmd_train(args) -> int:
    """Build the training dataset, train, validate, refit, save the run and print the leaderboard."""
    from .training import (  # scikit-learn: loaded by the commands that model only
        TrainConfig,
        train_and_save,
    )

    if args.treatment:
        return cmd_train_uplift(args)
    if args.control_value is not None or args.treatment_value is not None:
        raise UsageError("--control-value and --treatment-value go with --treatment (uplift learners)")
    t0 = time.perf_counter()
    df, schema, report = load(args)
    _fail_on_errors(report)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    cfg = TrainConfig(models="auto" if keys in (["auto"], []) else keys, metric=args.metric,
                      calibrate=None if args.calibrate == "none" else args.calibrate, seed=args.seed,
                      backtest=max(0, args.backtest), refit=args.refit, tune_budget=args.tune_budget)
    model_keys = cfg.model_keys()
    if args.epochs:
        cfg.params = {k: {"epochs": args.epochs} for k in model_keys if REGISTRY[k].family == "deep"}
    needs_seq = any(REGISTRY[k].needs_sequences for k in model_keys)
    if schema.kind == "events":
        ev = canonical_events(df, schema)
        scfg = snapshot_config(args, ev)
        ds = build_dataset(ev, scfg, sequences=needs_seq, cutoffs=training_cutoffs(ev, scfg),
                           event_tokens=max([REGISTRY[k].needs_events for k in model_keys], default=0))
        snap = scfg.as_dict()
    else:
        _id_notes(report)
        ds, snap = user_dataset(df, schema, report), {}
    result, _ = train_and_save(args.out, ds, schema, cfg, snapshot=snap, digest=df.attrs.get("digest", ""),
                               excluded=report.excluded_features, progress=_print_progress)
    cols = ["model", "roc_auc", "default_roc_auc", "pr_auc", "f1", "recall_top10", "fit_seconds"]
    cols = [c for c in cols if c in result.leaderboard]
    print(f"validation: {result.scheme}")
    print(result.refit_note)
    print(result.leaderboard[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if len(result.backtest):
        bt = result.backtest.pivot_table(index="cutoff", columns="model", values="roc_auc")
        print("backtest ROC-AUC per cutoff:")
        print(bt.to_string(float_format=lambda v: f"{v:.4f}"))
    for k, v in result.errors.items():
        print(f"warning: {k} failed: {v}")
    print(f"best model: {result.best}; saved to {args.out} in {time.perf_counter() - t0:.1f} s")
    return EXIT_OK


def _print_progress(event: TrainProgress) -> None:
    per_epoch = event.stage == "training" and "epoch " in event.message  # neural models and pre-training, per epoch
    if event.model is not None and (event.stage in ("done", "failed", "searched") or per_epoch):
        print(f"  {event.message}", file=sys.stderr)


def _spark_scores(run, args, choice: dict):
    """``score --engine spark``: features built and the model applied on Spark (a Parquet file or folder is read by
    Spark itself), then the list made as for any scoring."""
    from . import spark  # PySpark is optional: loaded by the commands that ask for it
    from .scoring import scored_list

    data = args.data if spark.is_parquet_source(args.data) else read_table(args.data, sheet=args.sheet)
    key = args.model or run.best
    scores, frame, seq = spark.score(run, data, as_of=args.as_of, model=key, master=args.spark_master)
    return scored_list(run, key, scores, frame, seq, df=data if not isinstance(data, str) else None, **choice)


def _contacts(text: str | None) -> dict:
    """``--contacts N`` or ``--contacts P%`` as the library's ``contacts`` or ``share``."""
    if text is None:
        return {}
    t = str(text).strip()
    try:
        if t.endswith("%"):
            return {"share": float(t[:-1]) / 100.0}
        return {"contacts": int(t)}
    except ValueError:
        raise UsageError(f"--contacts takes a number of users (200) or a share of those scored (10%), got "
                         f"{text!r}") from None


def cmd_score(args) -> int:
    """Score a file with a saved run and write the users chosen, most at risk first."""
    from .base_rate import base_rate_check
    from .export import readable_list, write_table
    from .scoring import score_file

    t0 = time.perf_counter()
    key = None
    if args.pseudonymise_key_env:
        key = os.environ.get(args.pseudonymise_key_env, "")
        if not key:
            raise UsageError(f"Environment variable {args.pseudonymise_key_env} is empty or not set: put the "
                             "pseudonymisation key in it.")
    if args.control_share is None and (args.seed is not None or args.contact_out or args.campaign_days is not None):
        raise UsageError("--seed, --contact-out and --campaign-days go with --control-share, the share of the list "
                         "held out")
    if args.control_share is not None:
        control.check_share(args.control_share)
        control.check_seed(args.seed if args.seed is not None else 0)
        days = control.check_days(control.DEFAULT_DAYS if args.campaign_days is None else args.campaign_days)
    run = load_run(args.run)
    if run.task == "uplift":
        return cmd_score_uplift(run, args)
    choice = dict(as_of=args.as_of, top=args.top, threshold=args.threshold, reasons=args.reasons, offers=args.offers,
                  pseudonymise_key=key, audience=args.audience, **_contacts(args.contacts))
    if args.engine == "spark":
        result = _spark_scores(run, args, choice)
    else:
        df = read_table(args.data, sheet=args.sheet)
        result = score_file(run, df, model=args.model, **choice)
    held = None if args.control_share is None else control.assign_control(result.chosen, args.control_share, args.seed,
                                                                          days=days)
    basis = result.chosen.attrs.get("value_basis")  # amounts to 2 decimals with their unit; probabilities exact
    write_table(readable_list(result.chosen if held is None else held, basis, probabilities=args.readable), args.out)
    if args.contact_out:
        write_table(readable_list(control.contact_rows(held), basis), args.contact_out)
    note = "" if held is None else f"; {control.control_note(held)}"
    print(f"scored {len(result.scores):,} users with {result.model}; wrote {len(result.chosen):,} rows to "
          f"{args.out} in {time.perf_counter() - t0:.1f} s{note}")
    stages = result.scores["stage"].value_counts() if "stage" in result.scores else None
    if stages is not None and stages.sum():
        print("stages: " + ", ".join(f"{st} {int(stages.get(st, 0)):,}" for st in ("new", "active", "slipping",
                                                                                   "lapsed")))
    rate = base_rate_check(run, result.scores)  # every customer scored, before the choice of who to contact
    print(f"churn: {rate.summary}")
    if rate.warning:
        print(f"warning: {rate.warning}")
    if not args.no_record:
        _record(run, result, args, held)
    return EXIT_OK


def _record(run, result, args, held=None) -> None:
    """Keep the scoring in the workspace's history (after the output is written: a failure here loses no scores),
    with the list's control group when one was held out."""
    from .monitor import record_scoring

    try:
        rec = record_scoring(run, result, source="cli", data_name=os.path.basename(str(args.data)), control=held)
    except RetentionError as exc:
        raise RetentionError(f"the scores were written to {args.out}, but the scoring could not be recorded: "
                             f"{_one_line(exc)} (score with --no-record to skip the history)") from None
    print(f"recorded scoring {rec.scoring_id} as of {rec.as_of} in the scoring history")


# ---------------------------------------------------------------------------------------- recommend (offers per user)
def _recommend_parser(sub) -> None:
    s = sub.add_parser("recommend", help="product offers per user from an event log (own products first, then "
                                         "similar products and best sellers)")
    s.add_argument("data")
    s.add_argument("--out", required=True, help="output file (.csv, .csv.gz or .parquet): one row per offer")
    _role_options(s)
    s.add_argument("--as-of", help="make offers from the events up to this date (default: the end of the data)")
    s.add_argument("--top", type=int, default=10, help="offers per user (default 10)")
    s.add_argument("--users", help="file with a user_id column: offers for these users (default: users who bought in "
                                   "the lookback window)")
    s.add_argument("--lookback", type=int, default=365, help="days before --as-of in which a user must have bought "
                                                             "to get offers (default 365)")
    s.add_argument("--horizon", type=int, default=90, help="days ahead the offers aim at (default 90)")
    s.add_argument("--reasons", action="store_true", help="add a reason column (why each offer is made)")


def cmd_recommend(args) -> int:
    from .recommend import (
        RecommenderConfig,  # scikit-learn and implicit: loaded by the commands that need them
    )
    from .recommend.offers import CLI_COLUMNS, offers_from_table, read_user_ids

    t0 = time.perf_counter()
    if args.top < 1:
        raise UsageError(f"--top must be at least 1, got {args.top}.")
    df, schema, _ = load(args)  # training checks (enough users, labels) do not apply to offers
    users = read_user_ids(args.users) if args.users else None
    cfg = RecommenderConfig(horizon_days=args.horizon, lookback_days=args.lookback)
    offers = offers_from_table(df, schema, as_of=args.as_of, users=users, n=args.top, config=cfg)
    cols = CLI_COLUMNS + [c for c in ("product_name", "reason") if c in offers.columns
                          and (c != "reason" or args.reasons)]
    write_table(offers[cols], args.out)
    blend = offers.attrs.get("blend", {})
    print(f"offers as of {offers.attrs.get('as_of')}: {offers['user_id'].nunique():,} users, {len(offers):,} offers "
          f"(own products first, up to {blend.get('depth')}; then {blend.get('discovery')} products); wrote {args.out} "
          f"in {time.perf_counter() - t0:.1f} s")
    return EXIT_OK



# --- serve (the scoring service, retention_core.serve) ---
def cmd_serve(args) -> int:
    """Verify and load the run, then answer scoring requests over HTTP until stopped (Ctrl+C). A bad run stops
    here, before the port is bound."""
    import uvicorn

    from .serve import MODEL_ENV, RUN_ENV, TOKEN_ENV, Limits, create_app, exposure_warning, served_model

    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {args.port}")
    _check_port_free(args.host, args.port)
    if load_run(args.run).task == "uplift":
        raise UsageError("the service scores churn runs; this run holds uplift learners (score its customers with "
                         "the score command)")
    if args.workers == 1:
        app = create_app(args.run, model=args.model)
        target, factory, key = app, False, app.state.scorer.key
    else:  # each worker loads the run itself; it is verified once here first, and the model named checked
        key = served_model(load_run(args.run), args.model)
        Limits.from_environment()  # a limit variable that is not a number stops here, not in each worker
        os.environ[RUN_ENV], os.environ[MODEL_ENV] = os.path.abspath(args.run), key
        target, factory = "retention_core.serve:app_from_environment", True
    warning = exposure_warning(args.host, os.environ.get(TOKEN_ENV) or None)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    print(f"serving run {os.path.basename(os.path.abspath(args.run))}, model {key}, on http://{args.host}:{args.port} "
          f"(API documentation at /docs); Ctrl+C stops", file=sys.stderr, flush=True)
    uvicorn.run(target, factory=factory, host=args.host, port=args.port, workers=args.workers, access_log=False,
                log_level="warning")
    return EXIT_OK


def _check_port_free(host: str, port: int) -> None:
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise UsageError(f"--host {host!r} is not an address of this machine") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None




COMMANDS = {"inspect": cmd_inspect, "build-dataset": cmd_build_dataset, "train": cmd_train, "score": cmd_score,
            "monitor": cmd_monitor, "recommend": cmd_recommend, "serve": cmd_serve}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    debug = os.environ.get("RETENTION_DEBUG") == "1"
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except RetentionError as exc:
        print(f"error: {_worded(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError:
        print("error: not enough memory for this file; filter or sample it first", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # an internal failure: one line, traceback only when debugging
        if debug:
            raise
        print(f"error: internal failure ({type(exc).__name__}: {_one_line(exc)}); "
              "rerun with RETENTION_DEBUG=1 for details", file=sys.stderr)
        return EXIT_INTERNAL


def _worded(exc: RetentionError) -> str:
    """A library error in the command line's terms: the option behind the field at fault, the options that name
    columns the product could not find."""
    text = _one_line(exc)
    if getattr(exc, "field", None) in FIELD_FLAGS:
        text = f"{FIELD_FLAGS[exc.field]}: {text}"
    flags = [ROLE_FLAGS[r][0] for r in getattr(exc, "roles", ()) if r in ROLE_FLAGS]
    if flags:
        text += f" On the command line: {' '.join(f'{f} COLUMN' for f in flags)}."
    return text


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
