"""Offers where the product hands them out: from a raw table and its column roles, on an at-risk list
(``offer_1..offer_N``), per segment, and for the users of a scored run."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..events import canonical_events
from ..io import read_table
from ..roles import Schema, infer_schema
from .blend import RecommenderConfig
from .data import NO_PRODUCT, product_names
from .model import recommend

#: Columns the command line writes, in order (``product_name`` only when the log names its products).
CLI_COLUMNS = ["user_id", "rank", "product", "score", "basis"]


def offers_available(schema) -> tuple[bool, str]:
    """(whether offers can be made from this table, the sentence to show when not)."""
    if schema.kind != "events":
        return False, ("Offers need an event log with a product on each line; this table has one row per user. "
                       "Upload the order lines (or events) to get offers.")
    if not schema.roles.get("product"):
        return False, NO_PRODUCT
    return True, ""


def offers_from_table(df: pd.DataFrame, schema, *, as_of=None, users=None, n: int = 10,
                      config: RecommenderConfig | None = None, unknown: str = "error",
                      events: pd.DataFrame | None = None) -> pd.DataFrame:
    """Offers from a raw table and its roles (what the app and ``python -m retention_core recommend`` call).

    ``events``: the canonical events of ``df`` when already computed. Raises ``ConfigError`` when the table cannot
    give offers (a user table, no product column) and ``DataError`` when there is no purchase before ``as_of`` or
    (``unknown="error"``) some ``users`` have no history.
    """
    ok, why = offers_available(schema)
    if not ok:
        raise ConfigError(why)
    ev = events if events is not None else canonical_events(df, schema)
    names = product_names(df, schema)
    return recommend(ev, as_of=as_of, users=users, n=n, config=config, names=names, unknown=unknown)


def read_user_ids(path) -> list[str]:
    """The ``user_id`` column of a file (CSV, Excel, Parquet ...), as text."""
    t = read_table(path)
    col = next((c for c in t.columns if str(c).strip().lower() in ("user_id", "userid", "user id")), None)
    if col is None:
        raise ConfigError(f"The users file needs a user_id column; it has {', '.join(map(str, t.columns[:10]))}.")
    ids = t[col].dropna().astype(str).str.strip()
    ids = ids[ids != ""]
    if ids.empty:
        raise ConfigError("The users file lists no user ids.")
    return ids.drop_duplicates().tolist()


def offer_text(offers: pd.DataFrame) -> pd.Series:
    """Each offer as one cell: ``name (product)`` when the product has a name, else the product."""
    prod = offers["product"].astype(str)
    if "product_name" not in offers.columns:
        return prod
    name = offers["product_name"].fillna("").astype(str)
    return pd.Series(np.where(name != "", name + " (" + prod + ")", prod), index=offers.index)


def offer_columns(offers: pd.DataFrame, n: int) -> pd.DataFrame:
    """``user_id, offer_1..offer_n``: one row per user of ``offers`` (empty text where a user has fewer offers)."""
    if n < 1:
        raise ConfigError(f"The number of offers must be at least 1, got {n}.")
    o = offers.loc[offers["rank"] <= n, ["user_id", "rank"]].copy()
    o["text"] = offer_text(offers.loc[o.index]).to_numpy()
    wide = o.pivot_table(index="user_id", columns="rank", values="text", aggfunc="first")
    wide = wide.reindex(columns=range(1, n + 1)).fillna("")
    wide.columns = [f"offer_{i}" for i in range(1, n + 1)]
    return wide.reset_index().astype({"user_id": "str"})


def attach_offers(list_df: pd.DataFrame, offers: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """``list_df`` (an at-risk list) with ``offer_1..offer_n`` columns added at the end (a copy; text, so the CSV
    export neutralises formula-like names as it does every text cell)."""
    wide = offer_columns(offers, n)
    out = list_df.copy()
    look = wide.set_index("user_id")
    ids = out["user_id"].astype(str)
    for c in look.columns:
        out[c] = ids.map(look[c]).fillna("").to_numpy()
    out.attrs.update(list_df.attrs)
    return out


def segment_offers(offers: pd.DataFrame, segments: pd.DataFrame, column: str, *, top: int = 5,
                   within: int = 3) -> pd.DataFrame:
    """The products most often offered in each segment: ``segment, rank, product, [product_name,] users, share,
    mean_score``, counting each user's first ``within`` offers; ``share`` is the share of the segment's users
    offered the product. ``segments`` holds ``user_id`` and ``column``."""
    if column not in segments.columns:
        raise ConfigError(f"Segment column {column!r} is not among the users' columns.")
    seg = segments[["user_id", column]].copy()
    seg["user_id"] = seg["user_id"].astype(str)
    seg[column] = seg[column].astype(object).where(seg[column].notna(), "(missing)").astype(str)
    o = offers[offers["rank"] <= within].copy()
    o["user_id"] = o["user_id"].astype(str)
    o = o.merge(seg.drop_duplicates("user_id"), on="user_id", how="inner")
    size = seg.groupby(column)["user_id"].nunique()
    keys = [column, "product"] + (["product_name"] if "product_name" in o.columns else [])
    g = o.groupby(keys, dropna=False).agg(users=("user_id", "nunique"), mean_score=("score", "mean")).reset_index()
    g["share"] = g["users"] / g[column].map(size).to_numpy()
    g = g.sort_values([column, "users", "mean_score", "product"], ascending=[True, False, False, True])
    g["rank"] = g.groupby(column).cumcount() + 1
    g = g[g["rank"] <= top].rename(columns={column: "segment"})
    cols = ["segment", "rank", "product"] + (["product_name"] if "product_name" in g.columns else []) + \
        ["users", "share", "mean_score"]
    return g[cols].reset_index(drop=True)


def schema_for_run(run, df: pd.DataFrame):
    """The run's saved column roles applied to ``df`` (:meth:`~retention_core.roles.Schema.for_new_data`)."""
    saved = Schema.from_dict(run.info["schema"])
    return infer_schema(df, saved.for_new_data(df.columns, label=False, attributes=False))


def offers_for_run(run, df: pd.DataFrame, list_df: pd.DataFrame, *, n: int, as_of=None) -> pd.DataFrame:
    """``list_df`` (scored users of ``run``) with ``offer_1..offer_n`` from the log ``df`` as of ``as_of``."""
    if n < 1:
        raise ConfigError(f"The number of offers per user must be at least 1, got {n}.", field="offers", value=n)
    schema = schema_for_run(run, df)
    offers = offers_from_table(df, schema, as_of=as_of, users=list_df["user_id"].astype(str).tolist(), n=n,
                               unknown="skip")
    return attach_offers(list_df, offers, n)
