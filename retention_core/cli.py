"""Command line: ``python -m retention_core inspect | build-dataset | train | score`` (the calls the app makes).

Exit status 0 on success; 2 on bad input or usage, with one ``error: ...`` line on stderr and no traceback; 1 on an
internal failure (set ``RETENTION_DEBUG=1`` to see its traceback).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .errors import RetentionError

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(RetentionError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints the whole usage otherwise)
        raise UsageError(f"{message} (see --help)")


def _role_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("columns (anything not given is inferred)")
    g.add_argument("--sheet", help="Excel sheet to read (default: the first sheet with data)")
    g.add_argument("--kind", choices=["events", "users"], help="force the table kind")
    g.add_argument("--user-col", help="user id column")
    g.add_argument("--time-col", help="timestamp column")
    g.add_argument("--order-col", help="order / invoice id column")
    g.add_argument("--amount-col", help="line or order value column")
    g.add_argument("--quantity-col", help="quantity column")
    g.add_argument("--price-col", help="unit price column")
    g.add_argument("--event-col", help="event type column")
    g.add_argument("--product-col", help="product column")
    g.add_argument("--category-col", help="category column")
    g.add_argument("--purchase-value", action="append",
                   help="event type value that counts as a purchase (repeat or comma-separate for several)")


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
    s.add_argument("--label", help="label column (user tables)")
    s.add_argument("--positive", help="label value that means churned (user tables)")
    _snapshot_options(s)
    s.add_argument("--models", default="auto", help="'auto' or a comma-separated list of model keys")
    s.add_argument("--metric", default="roc_auc", help="metric that picks the best model (default roc_auc)")
    s.add_argument("--calibrate", choices=["none", "isotonic", "sigmoid"], default="none")
    s.add_argument("--backtest", type=int, default=0, help="also validate at N earlier cutoffs (event logs)")
    s.add_argument("--refit", action=argparse.BooleanOptionalAction, default=True,
                   help="after validation, refit the kept models on the most recent labelled snapshots, the validation "
                        "one included, carrying early-stopping counts, calibration and threshold (default; "
                        "--no-refit saves the models exactly as validated)")
    s.add_argument("--epochs", type=int, help="epochs for deep models")
    s.add_argument("--seed", type=int, default=0)

    s = sub.add_parser("score", help="score new data with a saved run")
    s.add_argument("run")
    s.add_argument("data")
    s.add_argument("--out", required=True, help="output CSV")
    s.add_argument("--sheet")
    s.add_argument("--as-of", help="score as of this date (event logs; default: the end of the data)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--top", type=int, help="keep the K users most at risk")
    g.add_argument("--threshold", type=float, help="keep users with churn probability at or above P")
    s.add_argument("--reasons", type=int, default=0, help="add the top N reasons per user")
    s.add_argument("--model", help="score with this model of the run (default: the run's best; the leaderboard and "
                                   "metrics.json list the keys)")
    s.add_argument("--pseudonymise-key-env", metavar="VAR",
                   help="replace user ids by keyed pseudonyms (HMAC-SHA256) using the key in environment variable VAR "
                        "(the key never appears on the command line)")
    _engine_options(s)
    return p


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
    ov: dict = {}
    mapping = {"user_col": "user_id", "time_col": "timestamp", "order_col": "order_id", "amount_col": "amount",
               "quantity_col": "quantity", "price_col": "price", "event_col": "event_type", "product_col": "product",
               "category_col": "category", "label": "label"}
    for arg, role in mapping.items():
        v = getattr(args, arg, None)
        if v:
            ov[role] = v
    if getattr(args, "kind", None):
        ov["kind"] = args.kind
    if getattr(args, "purchase_value", None):
        ov["purchase_values"] = [x.strip() for v in args.purchase_value for x in v.split(",") if x.strip()]
    if getattr(args, "positive", None) is not None:
        ov["label_positive"] = _typed(args.positive)
    return ov


def _typed(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def snapshot_config(args: argparse.Namespace, ev):
    from .events import SnapshotConfig, default_config

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
    from .io import read_table
    from .roles import infer_schema
    from .validation import validate

    df = read_table(args.data, sheet=getattr(args, "sheet", None))
    schema = infer_schema(df, overrides_from_args(args))
    return df, schema, validate(df, schema)


def _fail_on_errors(report) -> None:
    if report.errors:
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more problem(s); run inspect)" if len(report.errors) > 1 else ""
        raise RetentionError(f"{first.message}: {first.action}{more}")


def cmd_inspect(args) -> int:
    df, schema, report = load(args)
    info = df.attrs.get("read_info", {})
    out = {"kind": schema.kind, "rows": int(len(df)), "roles": {k: v for k, v in schema.roles.items() if v},
           "columns": [str(c) for c in df.columns], "issues": report.as_list(),
           "attributes": schema.attributes, "label_positive": schema.label_positive,
           "purchase_values": schema.purchase_values, "users": int(df[schema.roles["user_id"]].nunique())
           if schema.roles.get("user_id") else None, "read": info}
    if args.json:
        print(json.dumps(out, default=str, indent=1))
        return EXIT_OK
    print(f"{info.get('name', args.data)}: {'event log' if schema.kind == 'events' else 'user table'}, "
          f"{len(df):,} rows x {len(df.columns)} columns" + (f", {out['users']:,} users" if out["users"] else ""))
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


def cmd_build_dataset(args) -> int:
    from .events import build_dataset, canonical_events
    from .features import user_dataset
    from .scoring import format_dates, write_table
    from .validation import validate_dataset

    t0 = time.perf_counter()
    if getattr(args, "engine", "duckdb") == "spark":  # --- Spark engine: retention_core/spark/cli.py ---
        from .spark.cli import build_dataset_from_args

        ds = build_dataset_from_args(args)
    else:
        df, schema, report = load(args)
        _fail_on_errors(report)
        if schema.kind == "events":
            ev = canonical_events(df, schema)
            cfg = snapshot_config(args, ev)
            ds = build_dataset(ev, cfg)
        else:
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
    from .training import train_cli

    return train_cli(args)


def cmd_score(args) -> int:
    from .scoring import score_cli

    return score_cli(args)


COMMANDS = {"inspect": cmd_inspect, "build-dataset": cmd_build_dataset, "train": cmd_train, "score": cmd_score}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    debug = os.environ.get("RETENTION_DEBUG") == "1"
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except RetentionError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
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


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
