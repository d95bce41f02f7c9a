"""``build-dataset --engine spark``: the command line's dataset, built on Spark (the rest of the command, writing
the file and its summary, is the DuckDB engine's)."""
from __future__ import annotations


def build_dataset_from_args(args):
    """The Dataset for ``args`` (the parsed ``build-dataset`` arguments): a Parquet file or folder is read by Spark
    itself (the log never passes through pandas); other files are read by the product's reader and sent to Spark.
    A user table needs no engine: it is built as usual."""
    from ..cli import _fail_on_errors, load, overrides_from_args, snapshot_config
    from ..features import user_dataset
    from . import build_dataset, get_session
    from .events import SparkEvents
    from .source import is_parquet_source, read_parquet_events

    if is_parquet_source(args.data):
        spark = get_session(args.spark_master)
        events, schema, report = read_parquet_events(spark, args.data, overrides_from_args(args))
        _fail_on_errors(report)
    else:
        from ..events import canonical_events

        df, schema, report = load(args)
        _fail_on_errors(report)
        if schema.kind != "events":
            return user_dataset(df, schema, report)
        spark = get_session(args.spark_master)
        events = SparkEvents.from_pandas(spark, canonical_events(df, schema))
    return build_dataset(events, snapshot_config(args, events.bounds()))
