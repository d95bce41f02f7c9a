"""Hostile event logs for the differential tests of the feature engines (``tests/core/test_differential.py``: DuckDB
against NumPy; ``tests/spark/test_differential.py``: DuckDB, NumPy and Spark on the same Parquet file).

A generated log is a handful of user stories, each chosen to break an engine: a user with one event, a user with only
returns, a user who only bought postage and bank charges (non-product lines), a user whose purchases sit exactly at a
cutoff (and a microsecond before, with two countries at one instant), a user with purchases exactly at the start of the
lookback or of a trailing window or at the end of the horizon (and a microsecond or a day after), a user seen only
after the cutoffs, and ordinary shoppers with views, carts, cancellations (``C...`` orders), zero prices and ratings.
What the whole log holds is drawn too: event types absent or the whole column missing, ratings present, empty or
missing, user and order ids written as text that looks like numbers (``007`` beside ``7``; ``536365`` beside
``A563185``), prices written as text with thousands separators, and timestamps naive, as text with UTC offsets or as
instants of Europe/London, over the spring change of clocks (2024-03-31 01:00 UTC). Column names are those of the
shipped generator, so a run trained on its log scores these.

:func:`disagreements` compares two engines' feature tables: integers, dates and texts exactly, money (revenue, mean
order value) to 1e-12 relative, every other number exactly.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from retention_core.dataset import SnapshotConfig

START = pd.Timestamp("2024-03-20")  # day 0; the clocks of Europe/London change on day 11 (2024-03-31 01:00 UTC)
DST = pd.Timestamp("2024-03-31 01:00:00")
TYPES = ["purchase", "view", "return", "cancel", "add_to_cart"]
FEES = ["POST", "BANK CHARGES", "DOT", "M"]
PRODUCTS = ["85123A", "22423", "71053", "21730", "84029E"]
USER_IDS = {"text": ["u1", " u2 ", "ä", "z z", "U1", "A563185", "007"], "digits": ["536365", "12", "9", "13047",
            "17850", "4", "100"], "padded": ["007", "7", "07", "0", "70", "0070", "77"]}
ORDER_IDS = {"digits": ["536365", "536366", "536367", "536368", "536369", "536370"],
             "mixed": ["536365", "536366", "A563185", "536368", "A563186", "536370"]}
SECONDS = [0, 1, 86_399, 82_800, 43_200, 3_600]  # midnight UTC, a second after, a second before midnight,
#                                                  London's midnight in summer time (23:00 UTC), noon, 01:00


def _instant(draw, days=(0, 50)) -> pd.Timestamp:
    if draw(st.integers(0, 9)) == 0:
        return DST + pd.Timedelta(microseconds=draw(st.sampled_from([-1, 0, 1])))
    second = draw(st.sampled_from(SECONDS) | st.integers(0, 86_399))
    micro = draw(st.sampled_from([0, 0, 0, 1, 999_999]))
    return START + pd.Timedelta(days=draw(st.integers(*days)), seconds=second, microseconds=micro)


#: What a whole log may hold (the log-level choices), each with its possible values.
CHOICES = {"types": [None, ["purchase"], ["purchase", "view"], ["purchase", "return", "cancel"], TYPES],
           "users": sorted(USER_IDS), "orders": ["digits", "mixed", "int", None], "rating": ["values", "empty", None],
           "time": ["naive text", "offset text", "london", "naive"], "price": ["number", "text"],
           "product": [True, False], "category": [True, False]}


def choices_in_turn(i: int) -> dict:
    """The ``i``-th of a rotation of log-level choices in which every value of every choice comes round (and every
    pair of an order-id style and a time style within 16 logs): a few logs still cover them all."""
    turn = {k: v[(i + i // len(v) * (k == "time")) % len(v)] for k, v in CHOICES.items()}
    turn["users"] = CHOICES["users"][(i + 1) % 3]
    turn["product"], turn["category"] = i % 2 == 0, i % 4 < 2
    return turn


@st.composite
def hostile_logs(draw, in_turn: bool = False):
    """(raw log, cutoffs, snapshot settings, log-level choices): a log of 5 to 10 user stories and 1 to 3 cutoffs;
    the log-level choices drawn one by one, or (``in_turn``) a drawn turn of :func:`choices_in_turn`, which spreads
    a few logs over every value of every choice (16 derandomised logs: all of them) better than separate draws."""
    if in_turn:
        opts = choices_in_turn(draw(st.integers(0, 15)))
    else:
        opts = {k: draw(st.sampled_from(v)) for k, v in CHOICES.items()}
    cutoffs = sorted({draw(st.integers(8, 48)) for _ in range(draw(st.integers(1, 3)))})
    cfg = SnapshotConfig(horizon_days=draw(st.sampled_from([7, 14])), lookback_days=draw(st.sampled_from([20, 45])))
    rows: list[dict] = []
    ids = USER_IDS[opts["users"]]
    stories = draw(st.lists(st.sampled_from(["regular", "regular", "one event", "returns only", "fees only",
                                             "at the cutoff", "at the window edges", "after the cutoffs"]),
                            min_size=5, max_size=10))
    for k, story in enumerate(stories):
        user = ids[k % len(ids)] if k < len(ids) else f"{ids[k % len(ids)]}{k}"
        _story(draw, story, user, opts, cutoffs, rows, cfg)
    raw = _frame(rows, opts)
    return raw, [START + pd.Timedelta(days=d) for d in cutoffs], cfg, opts


def _row(draw, user, ts, opts, kind="purchase", product=None, qty=None) -> dict:
    orders = ORDER_IDS.get(opts["orders"], ORDER_IDS["digits"])
    order = draw(st.sampled_from(orders + [None]))
    if kind == "cancel" and order is not None:
        order = "C" + order if opts["orders"] != "int" else order
    rated = opts["rating"] == "values" and draw(st.booleans())
    return {"customer_id": user, "ts": ts, "event_type": kind, "order_id": order,
            "product_id": product or draw(st.sampled_from(PRODUCTS + [FEES[0]])),
            "category": draw(st.sampled_from(["Toys", "Home", None])),
            "quantity": qty if qty is not None else draw(st.sampled_from([1, 1, 2, 5, -1])),
            "unit_price": draw(st.sampled_from([0.0, 1.25, 2.95, 4.5, 10.0, 1250.0])),
            "rating": draw(st.sampled_from([1, 3, 5])) if rated else None,
            "country": draw(st.sampled_from(["DE", "FR", "UK", None]))}


def _story(draw, story: str, user: str, opts: dict, cutoffs: list[int], rows: list[dict], cfg) -> None:
    kinds = opts["types"] or ["purchase"]
    if story == "regular":
        for _ in range(draw(st.integers(2, 8))):
            rows.append(_row(draw, user, _instant(draw), opts, draw(st.sampled_from(kinds))))
    elif story == "one event":
        rows.append(_row(draw, user, _instant(draw), opts, qty=1))
    elif story == "returns only":
        kind = "return" if "return" in kinds else "purchase"
        for _ in range(draw(st.integers(1, 3))):
            rows.append(_row(draw, user, _instant(draw), opts, kind, qty=-1 if kind == "purchase" else None))
    elif story == "fees only":
        for _ in range(draw(st.integers(1, 3))):
            rows.append(_row(draw, user, _instant(draw), opts, product=draw(st.sampled_from(FEES)), qty=1))
    elif story == "at the cutoff":
        T = START + pd.Timedelta(days=draw(st.sampled_from(cutoffs)))
        for ts in (T, T - pd.Timedelta(microseconds=1), T - pd.Timedelta(microseconds=1)):
            rows.append(_row(draw, user, ts, opts, qty=1))
    elif story == "at the window edges":  # the lookback's start, a trailing window's start, the horizon's end
        T = START + pd.Timedelta(days=draw(st.sampled_from(cutoffs)))
        days = draw(st.sampled_from([-cfg.lookback_days, -7, -30, cfg.horizon_days]))
        edge = T + pd.Timedelta(days=days)
        for ts in (edge, edge + pd.Timedelta(microseconds=draw(st.sampled_from([1, 86_400 * 10**6])))):
            rows.append(_row(draw, user, ts, opts, qty=1))
        rows.append(_row(draw, user, T - pd.Timedelta(days=1), opts, qty=1))
    else:
        first = max(cutoffs) + 1
        for _ in range(draw(st.integers(1, 3))):
            rows.append(_row(draw, user, _instant(draw, (first, first + 20)), opts))


def _frame(rows: list[dict], opts: dict) -> pd.DataFrame:
    """The rows as an export would write them: the log-level choices applied to whole columns."""
    raw = pd.DataFrame(rows)
    ts = pd.to_datetime(raw.pop("ts"))
    if opts["time"] == "naive text":
        raw.insert(1, "event_time", [t.isoformat(sep=" ") for t in ts])
    elif opts["time"] == "offset text":
        raw.insert(1, "event_time", [t.isoformat() for t in ts.dt.tz_localize("UTC").dt.tz_convert("Europe/London")])
    elif opts["time"] == "london":
        raw.insert(1, "event_time", ts.dt.tz_localize("UTC").dt.tz_convert("Europe/London"))
    else:
        raw.insert(1, "event_time", ts)
    if opts["types"] is None:
        raw = raw.drop(columns=["event_type"])
    if opts["orders"] is None:
        raw = raw.drop(columns=["order_id"])
    elif opts["orders"] == "int":
        raw["order_id"] = pd.array([None if r["order_id"] is None else int(r["order_id"].removeprefix("C"))
                                    for r in rows], dtype="Int64")
    if opts["rating"] is None:
        raw = raw.drop(columns=["rating"])
    else:
        raw["rating"] = pd.array([r["rating"] for r in rows], dtype="Int64")
    if not opts["product"]:
        raw = raw.drop(columns=["product_id"])
    if not opts["category"]:
        raw = raw.drop(columns=["category"])
    if opts["price"] == "text":
        raw["unit_price"] = [f"{p:,.2f}" for p in raw["unit_price"]]
    return raw


# ----------------------------------------------------------------------------------------------- comparing
def is_money(column: str) -> bool:
    return "revenue" in column or column == "avg_order_value"


def _texts(s: pd.Series) -> np.ndarray:
    return s.astype(object).where(s.notna(), None).to_numpy()


def disagreements(ref: pd.DataFrame, other: pd.DataFrame, attributes: list[str], name: str) -> list[str]:
    """Where ``other`` (engine ``name``) differs from ``ref`` (DuckDB): one line per problem."""
    if list(ref.columns) != list(other.columns):
        return [f"{name}: columns {list(other.columns)}, DuckDB {list(ref.columns)}"]
    if len(ref) != len(other):
        return [f"{name}: {len(other)} rows, DuckDB {len(ref)}"]
    problems = []
    for c in ref.columns:
        a, b = ref[c], other[c]
        if a.dtype != b.dtype:
            problems.append(f"{name}: {c} is {b.dtype}, DuckDB {a.dtype}")
            continue
        if c in attributes or c == "user_id":
            same = _texts(a) == _texts(b)
        elif c == "snapshot_date":
            same = a.to_numpy() == b.to_numpy()
        else:
            x, y = a.to_numpy("float64"), b.to_numpy("float64")
            close = np.isclose(y, x, rtol=1e-12, atol=1e-12) if is_money(c) else x == y
            same = (np.isnan(x) & np.isnan(y)) | close
        if not np.all(same):
            i = int(np.flatnonzero(~np.asarray(same))[0])
            problems.append(f"{name}: {c} differs in {int((~np.asarray(same)).sum())} rows, e.g. user "
                            f"{ref['user_id'].iloc[i]!r} on {ref['snapshot_date'].iloc[i]}: DuckDB {a.iloc[i]!r}, "
                            f"{name} {b.iloc[i]!r}")
    return problems


def run_overrides(run, columns) -> dict:
    """The roles a saved run reads new data with (as ``score`` applies them)."""
    from retention_core.roles import Schema

    return Schema.from_dict(run.info["schema"]).for_new_data(columns)


def train_run(path):
    """A run of logistic regression and gradient boosting on the shipped generator's log (its column names are the
    hostile logs'), saved at ``path`` with the caller's signing settings; returns the loaded run."""
    from assets.generator import generate_events
    from retention_core import bundle
    from retention_core.dataset import build_dataset, training_cutoffs
    from retention_core.events import canonical_events
    from retention_core.roles import infer_schema
    from retention_core.training import TrainConfig, train_models

    raw = generate_events(300, seed=21, days=400)
    schema = infer_schema(raw)
    ev = canonical_events(raw, schema)
    cfg = SnapshotConfig(horizon_days=30)
    ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))
    config = TrainConfig(models=["logreg", "gbm"])
    result = train_models(ds, config, horizon_days=30)
    saved = bundle.save_run(path, result, schema=schema, dataset=ds, snapshot=cfg.as_dict(), data_digest="hostile",
                            train_config=config)
    return bundle.load_run(saved)
