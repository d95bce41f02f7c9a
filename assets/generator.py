"""Seeded generator of realistic e-commerce event logs.

The log looks like a raw export from an online shop: one row per event
(``view``, ``add_to_cart``, ``purchase`` line, ``return`` line) with the
customer's acquisition attributes repeated on every row.

Customer behaviour follows the BG/NBD story (Fader, Hardie & Lee, 2005):

* every customer is acquired at a uniformly random moment in the first
  ``ACQUISITION_SHARE`` of the period and places a first order right away;
* while alive, a customer places repeat orders as a Poisson process with a
  personal weekly rate ``lambda ~ Gamma(r, alpha)``;
* after each repeat order the customer drops out for good with a personal
  probability ``p``, drawn from ``Beta(a, b)`` and then shifted on the logit
  scale by the customer's acquisition channel, country and (weakly) device.

Calendar seasonality (busier weekends and end-of-year) is applied by running
the model in "business time" and mapping back to calendar time, which keeps
the BG/NBD structure intact. Around every order there is a short session of
product views and add-to-cart events; customers also browse without buying
while alive (and, rarely, after they have dropped out). A few percent of
orders get a return line a few days later.

Everything is vectorised with numpy, so ten million events take seconds.

Usage from the command line::

    python -m assets.generator --users 2000 --out events.csv.gz --seed 7
    python -m assets.generator --events 1000000 --out events.parquet
    python -m assets.generator --sample      # rebuild the shipped sample
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "COLUMNS",
    "EVENT_TYPES",
    "CATEGORIES",
    "COUNTRIES",
    "CHANNELS",
    "DEVICES",
    "SAMPLE_SPEC",
    "SAMPLE_DESCRIPTION",
    "generate_events",
    "generate_for_events",
    "sample_path",
    "write_events",
    "write_sample",
    "main",
]

# ---------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------

#: Column names exactly as they appear in the export.
COLUMNS: tuple[str, ...] = (
    "customer_id",
    "event_time",
    "event_type",
    "order_id",
    "product_id",
    "category",
    "quantity",
    "unit_price",
    "rating",
    "country",
    "channel",
    "device",
)

EVENT_TYPES: tuple[str, ...] = ("view", "add_to_cart", "purchase", "return")
_VIEW, _CART, _PURCHASE, _RETURN = range(4)

# ---------------------------------------------------------------------------
# Catalogue
# ---------------------------------------------------------------------------

#: Product categories, their share of the catalogue/traffic and a typical price.
CATEGORIES: tuple[str, ...] = (
    "Books",
    "Electronics",
    "Fashion",
    "Home & Kitchen",
    "Beauty",
    "Sports & Outdoors",
    "Toys & Games",
    "Grocery",
    "Health",
    "Garden",
    "Pet Supplies",
    "Automotive",
)
_CATEGORY_WEIGHT = np.array([14, 10, 16, 11, 9, 7, 7, 8, 6, 4, 5, 3], dtype=float)
_CATEGORY_MEDIAN_PRICE = np.array(
    [14, 95, 38, 32, 19, 42, 24, 7, 16, 28, 21, 36], dtype=float
)
N_PRODUCTS = 800
_PRICE_SIGMA = 0.75  # log-normal spread of list prices inside a category
_POPULARITY_EXPONENT = 0.9  # Zipf-like product popularity
_FAVOURITE_SHARE = 0.45  # share of a customer's picks from their favourite category

# ---------------------------------------------------------------------------
# Customers and their churn drivers (logit shifts on the dropout probability)
# ---------------------------------------------------------------------------

COUNTRIES: tuple[str, ...] = ("US", "GB", "DE", "FR", "CA", "ES", "AU")
_COUNTRY_WEIGHT = np.array([0.38, 0.18, 0.13, 0.10, 0.09, 0.07, 0.05])
_COUNTRY_SHIFT = np.array([0.0, 0.05, -0.10, 0.0, 0.0, 0.70, 0.05])  # ES churns more

CHANNELS: tuple[str, ...] = ("organic", "paid_search", "paid_social", "email", "referral")
_CHANNEL_WEIGHT = np.array([0.34, 0.24, 0.20, 0.12, 0.10])
_CHANNEL_SHIFT = np.array([0.0, 0.25, 0.85, -0.65, -0.50])

DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet")
_DEVICE_WEIGHT = np.array([0.58, 0.34, 0.08])
_DEVICE_SHIFT = np.array([0.08, -0.05, 0.04])  # weak on purpose

# ---------------------------------------------------------------------------
# BG/NBD and session parameters
# ---------------------------------------------------------------------------

ACQUISITION_SHARE = 0.6  # customers are acquired during the first 60% of the period
BGNBD_R, BGNBD_ALPHA = 0.75, 3.0  # weekly purchase rate ~ Gamma(r, scale=1/alpha)
BGNBD_A, BGNBD_B = 1.1, 7.0  # dropout probability ~ Beta(a, b), before shifts

_LINES_P = np.array([0.56, 0.25, 0.12, 0.07])  # 1..4 lines per order
_QTY_P = np.array([0.80, 0.13, 0.04, 0.02, 0.01])  # 1..5 units per line
_DISCOUNT_SHARE = 0.15  # lines bought on promotion
_ORDER_VIEWS_EXTRA = 0.8  # views per order session = 1 + Poisson(this)
_VIEW_OF_BOUGHT = 0.55  # share of session views that show a product later bought
_CART_SHARE = 0.5  # share of order lines with a visible add_to_cart event
_BROWSE_PER_ORDER = 0.35  # browse-only sessions per expected order while alive
_RESIDUAL_BROWSE_WEEKLY = 0.01  # browse sessions per week after dropping out
_BROWSE_VIEWS_EXTRA = 0.7  # views per browse session = 1 + Poisson(this)
_ABANDONED_CART = 0.12  # browse sessions ending with an add_to_cart
_RETURN_SHARE = 0.04  # orders that get a return
_RATING_SHARE, _RATING_SHARE_RETURNED = 0.07, 0.30
_RATING_P = np.array([0.04, 0.06, 0.13, 0.30, 0.47])
_RATING_P_RETURNED = np.array([0.35, 0.28, 0.20, 0.11, 0.06])

# Shopping hours (local time), relative weights per hour of day.
_HOUR_WEIGHT = np.array(
    [1.2, 0.7, 0.4, 0.3, 0.3, 0.5, 1.0, 1.8, 2.6, 3.0, 3.3, 3.6,
     4.2, 4.0, 3.6, 3.5, 3.6, 4.0, 4.6, 5.4, 6.0, 5.6, 4.2, 2.4]
)
_MONTH_FACTOR = np.array([0.85, 0.88, 0.95, 0.97, 1.0, 0.97, 0.95, 0.98, 1.0, 1.05, 1.30, 1.45])
_WEEKEND_FACTOR = 1.10

# ---------------------------------------------------------------------------
# Shipped sample
# ---------------------------------------------------------------------------

SAMPLE_FILE = "sample_events.csv.gz"
#: How the shipped sample was made (arguments to :func:`generate_events`).
SAMPLE_SPEC: dict[str, Any] = {"n_users": 2000, "seed": 7, "start": "2023-01-01", "days": 730}
SAMPLE_DESCRIPTION = (
    "assets/sample_events.csv.gz = generate_events(n_users=2000, start='2023-01-01', "
    "days=730, seed=7), written as gzip CSV with timestamps as 'YYYY-MM-DD HH:MM:SS' "
    "(rebuild with: python -m assets.generator --sample)"
)



def checkerboard_table(n: int, seed: int = 0, cells: int = 8) -> pd.DataFrame:
    """A per-user table with a churn label that is a checkerboard over two columns (strong interactions) plus noise
    columns and an id: large leaves cannot draw the cells, deep trees with small leaves can. 5% of the labels are
    flipped. For the settings search's tests and the quality benchmark."""
    rng = np.random.default_rng(seed)
    a, b = rng.random(n), rng.random(n)
    board = ((a * cells).astype(int) + (b * cells).astype(int)) % 2
    churn = np.where(rng.random(n) < 0.95, board, 1 - board)
    return pd.DataFrame({"id": [f"c{i}" for i in range(n)], "a": a, "b": b, "noise1": rng.normal(size=n),
                         "noise2": rng.integers(0, 50, n), "churn": np.where(churn == 1, "Yes", "No")})

def sample_path() -> pathlib.Path:
    """Path of the small sample export shipped with the studio."""
    return pathlib.Path(__file__).resolve().parent / SAMPLE_FILE


# ---------------------------------------------------------------------------
# Vectorised helpers
# ---------------------------------------------------------------------------


def _repeated_in_order(order: np.ndarray, product: np.ndarray) -> np.ndarray:
    """True for lines whose product already appeared earlier in the same order."""
    key = order * N_PRODUCTS + product
    first = np.zeros(len(key), dtype=bool)
    first[np.unique(key, return_index=True)[1]] = True
    return ~first


def _pick(rng: np.random.Generator, n: int, p: np.ndarray, dtype=np.int8) -> np.ndarray:
    """n draws of indices 0..len(p)-1 with probabilities p."""
    cdf = np.cumsum(p / p.sum())
    idx = np.searchsorted(cdf, rng.random(n), side="right")
    return np.minimum(idx, len(p) - 1).astype(dtype)


def _seconds_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    hour = _pick(rng, n, _HOUR_WEIGHT, np.int64)
    return hour * 3600 + rng.integers(0, 3600, n)


def _labels(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Vectorised 'C000123'-style labels."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size == 0:
        return np.array([], dtype=np.str_)
    digits = np.char.zfill(numbers.astype(np.str_), width)
    return np.char.add(prefix, digits)


class _Catalogue:
    """Products with a category, a list price and a popularity weight."""

    def __init__(self, rng: np.random.Generator, n_products: int = N_PRODUCTS):
        n_cat = len(CATEGORIES)
        cat = _pick(rng, n_products, _CATEGORY_WEIGHT, np.int64)
        cat[:n_cat] = np.arange(n_cat)  # no empty category
        cat = rng.permutation(cat)
        raw = _CATEGORY_MEDIAN_PRICE[cat] * np.exp(rng.normal(0.0, _PRICE_SIGMA, n_products))
        self.price = np.maximum(np.round(raw) - 0.01, 0.99)  # "x.99" list prices
        popularity = 1.0 / (1.0 + rng.permutation(n_products)) ** _POPULARITY_EXPONENT
        self.category = cat

        # Per-category cumulative popularity on one increasing key: category c
        # occupies (c, c + 1], so one searchsorted samples every category at once.
        order = np.argsort(cat, kind="stable")
        c_sorted, w_sorted = cat[order], popularity[order]
        totals = np.bincount(c_sorted, weights=w_sorted, minlength=n_cat)
        cum = np.cumsum(w_sorted)
        before = np.concatenate([[0.0], np.cumsum(totals)[:-1]])
        self._key = c_sorted + (cum - before[c_sorted]) / totals[c_sorted]
        self._order = order
        self._last = np.cumsum(np.bincount(c_sorted, minlength=n_cat)) - 1

    def sample(self, rng: np.random.Generator, favourite: np.ndarray) -> np.ndarray:
        """One product per entry, from the favourite category with some probability."""
        n = len(favourite)
        other = _pick(rng, n, _CATEGORY_WEIGHT, np.int64)
        cat = np.where(rng.random(n) < _FAVOURITE_SHARE, favourite, other)
        pos = np.searchsorted(self._key, cat + rng.random(n), side="right")
        return self._order[np.minimum(pos, self._last[cat])]


def _business_clock(start: np.datetime64, days: int) -> np.ndarray:
    """Cumulative busyness at each midnight (length days + 1, mean daily weight 1)."""
    dates = start.astype("datetime64[D]") + np.arange(days)
    month = dates.astype("datetime64[M]").astype(np.int64) % 12
    weekday = (dates.astype(np.int64) + 3) % 7  # 0 = Monday
    weight = _MONTH_FACTOR[month] * np.where(weekday >= 5, _WEEKEND_FACTOR, 1.0)
    weight = weight / weight.mean()
    return np.concatenate([[0.0], np.cumsum(weight)])


# ---------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------


def generate_events(
    n_users: int = 2000, *, start: str = "2023-01-01", days: int = 730, seed: int = 0
) -> pd.DataFrame:
    """Simulate the event log of ``n_users`` customers over ``days`` days.

    Returns a frame with :data:`COLUMNS`, sorted by ``event_time``. Strings are
    categoricals, ``event_time`` is naive ``datetime64[s]``, ``quantity`` is
    int16 (units viewed/added/bought; negative on returns), ``unit_price`` is
    float32 and ``rating`` is nullable Int8. The same arguments always give the
    same frame.
    """
    n_users = int(n_users)
    days = int(days)
    if n_users < 1:
        raise ValueError("n_users must be at least 1")
    if days < 1:
        raise ValueError("days must be at least 1")
    rng = np.random.default_rng(seed)
    t_start = np.datetime64(pd.Timestamp(start).floor("D").to_datetime64(), "s")
    horizon = days * 86400
    catalogue = _Catalogue(rng)

    # --- customers ------------------------------------------------------
    u = np.arange(n_users)
    country = _pick(rng, n_users, _COUNTRY_WEIGHT)
    channel = _pick(rng, n_users, _CHANNEL_WEIGHT)
    device = _pick(rng, n_users, _DEVICE_WEIGHT)
    favourite = _pick(rng, n_users, _CATEGORY_WEIGHT, np.int64)
    acquired = rng.uniform(0.0, ACQUISITION_SHARE * days, n_users)  # calendar days
    lam = rng.gamma(BGNBD_R, 1.0 / BGNBD_ALPHA, n_users) / 7.0  # orders per day
    p0 = np.clip(rng.beta(BGNBD_A, BGNBD_B, n_users), 1e-6, 1 - 1e-6)
    logit = (
        np.log(p0 / (1.0 - p0))
        + _COUNTRY_SHIFT[country]
        + _CHANNEL_SHIFT[channel]
        + _DEVICE_SHIFT[device]
    )
    p_drop = np.clip(1.0 / (1.0 + np.exp(-logit)), 1e-4, 0.999)

    # --- BG/NBD in business time ----------------------------------------
    clock = _business_clock(t_start, days)
    grid = np.arange(days + 1, dtype=float)
    t0 = np.interp(acquired, grid, clock)
    span = clock[-1] - t0
    n_poisson = rng.poisson(lam * span)  # orders if the customer never dropped out
    n_until_drop = rng.geometric(p_drop)  # repeat orders until dropout
    n_repeat = np.minimum(n_poisson, n_until_drop)
    dropped = n_until_drop <= n_poisson

    # Given N arrivals in the window they are sorted uniforms; the first M of
    # them are S_j / (S_M + Gamma(N - M + 1)) with S the cumsum of unit
    # exponentials, so only the orders actually placed are drawn.
    owner = np.repeat(u, n_repeat)
    gaps = rng.exponential(1.0, int(n_repeat.sum()))
    cum = np.cumsum(gaps)
    ends = np.cumsum(n_repeat)
    offset = np.concatenate([[0.0], cum])[ends - n_repeat]
    s = cum - offset[owner]
    s_last = np.concatenate([[0.0], cum])[ends] - offset
    total = s_last + rng.gamma((n_poisson - n_repeat + 1).astype(float), 1.0)
    repeat_t = t0[owner] + s / total[owner] * span[owner]
    death_t = np.full(n_users, clock[-1])
    has_repeat = n_repeat > 0
    death_t[dropped & has_repeat] = repeat_t[ends[dropped & has_repeat] - 1]

    # --- orders ---------------------------------------------------------
    order_user = np.concatenate([u, owner])
    order_day = np.interp(np.concatenate([t0, repeat_t]), clock, grid)
    order_day = np.minimum(np.floor(order_day).astype(np.int64), days - 1)
    order_sec = order_day * 86400 + _seconds_of_day(rng, len(order_user))
    chron = np.argsort(order_sec, kind="stable")
    order_user, order_sec = order_user[chron], order_sec[chron]
    n_orders = len(order_user)  # order k (0-based, chronological) is "O{k+1}"

    # --- order lines ----------------------------------------------------
    n_lines = _pick(rng, n_orders, _LINES_P, np.int64) + 1
    line_order = np.repeat(np.arange(n_orders), n_lines)
    line_user = order_user[line_order]
    line_product = catalogue.sample(rng, favourite[line_user])
    # One line per product in an order: redraw repeats a few times, then drop
    # the (rare) leftovers; the first line of every order always stays.
    for _ in range(3):
        dup = _repeated_in_order(line_order, line_product)
        if not dup.any():
            break
        line_product[dup] = catalogue.sample(rng, favourite[line_user[dup]])
    keep = ~_repeated_in_order(line_order, line_product)
    line_order, line_user, line_product = line_order[keep], line_user[keep], line_product[keep]
    n_lines = np.bincount(line_order, minlength=n_orders)
    line_start = np.cumsum(n_lines) - n_lines
    line_qty = _pick(rng, len(line_order), _QTY_P, np.int64) + 1
    list_price = catalogue.price[line_product]
    discount = np.where(
        rng.random(len(line_order)) < _DISCOUNT_SHARE, rng.uniform(0.7, 0.9, len(line_order)), 1.0
    )
    line_price = np.maximum(np.round(list_price * discount, 2), 0.01)
    line_sec = order_sec[line_order]

    # --- returns --------------------------------------------------------
    returned = np.flatnonzero(rng.random(n_orders) < _RETURN_SHARE)
    ret_pos = (rng.random(len(returned)) * n_lines[returned]).astype(np.int64)
    ret_line = line_start[returned] + ret_pos
    ret_sec = (
        (order_sec[returned] // 86400 + rng.integers(2, 31, len(returned))) * 86400
        + _seconds_of_day(rng, len(returned))
    )
    ret_qty = -rng.integers(1, line_qty[ret_line] + 1)
    keep = ret_sec < horizon
    returned, ret_line = returned[keep], ret_line[keep]
    ret_sec, ret_qty = ret_sec[keep], ret_qty[keep]

    # --- ratings on purchase lines ------------------------------------------
    line_returned = np.zeros(len(line_order), dtype=bool)
    line_returned[ret_line] = True
    rated = rng.random(len(line_order)) < np.where(
        line_returned, _RATING_SHARE_RETURNED, _RATING_SHARE
    )
    rating = np.where(
        line_returned,
        _pick(rng, len(line_order), _RATING_P_RETURNED),
        _pick(rng, len(line_order), _RATING_P),
    ) + 1

    # --- order sessions: views, then add_to_cart, then the purchase -----
    session_len = rng.integers(180, 2400, n_orders)  # seconds before checkout
    nv = 1 + rng.poisson(_ORDER_VIEWS_EXTRA, n_orders)
    view_order = np.repeat(np.arange(n_orders), nv)
    n_ov = len(view_order)
    pick_line = line_start[view_order] + (rng.random(n_ov) * n_lines[view_order]).astype(np.int64)
    view_product = np.where(
        rng.random(n_ov) < _VIEW_OF_BOUGHT,
        line_product[pick_line],
        catalogue.sample(rng, favourite[order_user[view_order]]),
    )
    view_sec = order_sec[view_order] - np.round(
        session_len[view_order] * (1.0 - 0.6 * rng.random(n_ov))
    ).astype(np.int64)
    carted = np.flatnonzero(rng.random(len(line_order)) < _CART_SHARE)
    cart_sec = line_sec[carted] - np.round(
        session_len[line_order[carted]] * (0.4 - 0.35 * rng.random(len(carted)))
    ).astype(np.int64)

    # --- browse-only sessions -------------------------------------------
    alive_span = death_t - t0
    dead_span = clock[-1] - death_t
    n_alive_b = rng.poisson(_BROWSE_PER_ORDER * lam * alive_span)
    n_dead_b = rng.poisson(_RESIDUAL_BROWSE_WEEKLY / 7.0 * dead_span)
    b_user = np.concatenate([np.repeat(u, n_alive_b), np.repeat(u, n_dead_b)])
    lo = np.concatenate([np.repeat(t0, n_alive_b), np.repeat(death_t, n_dead_b)])
    hi = np.concatenate([np.repeat(death_t, n_alive_b), np.full(int(n_dead_b.sum()), clock[-1])])
    b_day = np.interp(lo + rng.random(len(b_user)) * (hi - lo), clock, grid)
    b_day = np.minimum(np.floor(b_day).astype(np.int64), days - 1)
    b_sec = b_day * 86400 + _seconds_of_day(rng, len(b_user))
    bv = 1 + rng.poisson(_BROWSE_VIEWS_EXTRA, len(b_user))
    bv_session = np.repeat(np.arange(len(b_user)), bv)
    bv_step = rng.integers(15, 300, len(bv_session))
    bv_cum = np.cumsum(bv_step)
    bv_sec = b_sec[bv_session] + bv_cum - (bv_cum - bv_step)[np.cumsum(bv) - bv][bv_session]
    bv_user = b_user[bv_session]
    bv_product = catalogue.sample(rng, favourite[bv_user])
    last_view = np.cumsum(bv) - 1
    abandoned = np.flatnonzero(rng.random(len(b_user)) < _ABANDONED_CART)
    ab_row = last_view[abandoned]
    ab_sec = bv_sec[ab_row] + rng.integers(10, 180, len(abandoned))

    # --- assemble -------------------------------------------------------
    n_p, n_r = len(line_order), len(returned)
    parts_kind = [
        np.full(n_p, _PURCHASE),
        np.full(n_r, _RETURN),
        np.full(n_ov, _VIEW),
        np.full(len(carted), _CART),
        np.full(len(bv_session), _VIEW),
        np.full(len(abandoned), _CART),
    ]
    kind = np.concatenate(parts_kind).astype(np.int8)
    user = np.concatenate(
        [
            line_user,
            order_user[returned],
            order_user[view_order],
            line_user[carted],
            bv_user,
            bv_user[ab_row],
        ]
    )
    sec = np.concatenate([line_sec, ret_sec, view_sec, cart_sec, bv_sec, ab_sec])
    product = np.concatenate(
        [
            line_product,
            line_product[ret_line],
            view_product,
            line_product[carted],
            bv_product,
            bv_product[ab_row],
        ]
    )
    order_code = np.concatenate(
        [
            line_order,
            n_orders + np.arange(n_r),  # "R" + original order id
            np.full(n_ov + len(carted) + len(bv_session) + len(abandoned), -1),
        ]
    )
    qty = np.concatenate(
        [
            line_qty,
            ret_qty,
            np.ones(n_ov, dtype=np.int64),
            line_qty[carted],
            np.ones(len(bv_session) + len(abandoned), dtype=np.int64),
        ]
    )
    price = np.concatenate(
        [
            line_price,
            line_price[ret_line],
            catalogue.price[view_product],
            line_price[carted],
            catalogue.price[bv_product],
            catalogue.price[bv_product[ab_row]],
        ]
    )
    n_rest = len(kind) - n_p
    rating_val = np.concatenate([rating, np.zeros(n_rest, dtype=rating.dtype)]).astype(np.int8)
    rating_na = np.concatenate([~rated, np.ones(n_rest, dtype=bool)])

    inside = (sec >= 0) & (sec < horizon)
    idx = np.flatnonzero(inside)
    idx = idx[np.argsort(sec[idx], kind="stable")]

    width_c = max(6, len(str(n_users)))
    width_o = max(7, len(str(n_orders)))
    order_labels = np.concatenate(
        [
            _labels("O", np.arange(1, n_orders + 1), width_o),
            _labels("RO", returned + 1, width_o),
        ]
    )
    user_u = user[idx]
    frame = pd.DataFrame(
        {
            "customer_id": pd.Categorical.from_codes(
                user_u, categories=pd.Index(_labels("C", u + 1, width_c))
            ),
            "event_time": t_start + sec[idx].astype("timedelta64[s]"),
            "event_type": pd.Categorical.from_codes(kind[idx], categories=pd.Index(EVENT_TYPES)),
            "order_id": pd.Categorical.from_codes(
                order_code[idx], categories=pd.Index(order_labels)
            ),
            "product_id": pd.Categorical.from_codes(
                product[idx], categories=pd.Index(_labels("P", np.arange(1, N_PRODUCTS + 1), 4))
            ),
            "category": pd.Categorical.from_codes(
                catalogue.category[product[idx]], categories=pd.Index(CATEGORIES)
            ),
            "quantity": qty[idx].astype(np.int16),
            "unit_price": price[idx].astype(np.float32),
            "rating": pd.arrays.IntegerArray(rating_val[idx], rating_na[idx]),
            "country": pd.Categorical.from_codes(country[user_u], categories=pd.Index(COUNTRIES)),
            "channel": pd.Categorical.from_codes(channel[user_u], categories=pd.Index(CHANNELS)),
            "device": pd.Categorical.from_codes(device[user_u], categories=pd.Index(DEVICES)),
        },
        columns=list(COLUMNS),
    )
    return frame


def generate_for_events(n_events: int, *, seed: int = 0, **kw: Any) -> pd.DataFrame:
    """Generate a log with approximately ``n_events`` rows (normally within 5%).

    ``n_users`` is estimated from a small pilot run with the same settings and
    refined a few times; for small targets, where single customers weigh a
    lot, nearby customer counts are tried as well. Extra keyword arguments go
    to :func:`generate_events` (``start``, ``days``). Deterministic given seed.
    """
    n_events = int(n_events)
    if n_events < 1:
        raise ValueError("n_events must be at least 1")
    if "n_users" in kw:
        raise TypeError("generate_for_events chooses n_users itself")
    tolerance = 0.05 * n_events
    per_user = max(len(generate_events(2000, seed=seed, **kw)) / 2000.0, 1e-3)
    frames: dict[int, pd.DataFrame] = {}

    def error(n_users: int) -> float:
        if n_users not in frames:
            frames[n_users] = generate_events(n_users, seed=seed, **kw)
        return abs(len(frames[n_users]) - n_events)

    n_users = max(1, int(round(n_events / per_user)))
    for _ in range(4):
        if error(n_users) <= tolerance:
            return frames[n_users]
        per_user = max(len(frames[n_users]) / n_users, 1e-3)
        guess = max(1, int(round(n_events / per_user)))
        if guess in frames:
            break
        n_users = guess

    if n_users <= 5000:
        for step in range(1, 60):
            for candidate in (n_users + step, n_users - step):
                if candidate >= 1 and error(candidate) <= tolerance:
                    return frames[candidate]
    best = min(frames, key=error)
    return frames[best]


# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------


def write_events(frame: pd.DataFrame, out: str | pathlib.Path) -> pathlib.Path:
    """Write a generated log as CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``).

    CSV looks like a plain shop export: unquoted values, timestamps as
    ``YYYY-MM-DD HH:MM:SS``, prices with two decimals, empty cells for missing
    values. Gzip output is byte-for-byte reproducible.
    """
    out = pathlib.Path(out)
    name = out.name.lower()
    if name.endswith(".parquet"):
        frame.to_parquet(out, index=False, compression="zstd")
    elif name.endswith(".csv") or name.endswith(".csv.gz"):
        gz = name.endswith(".gz")
        try:
            _write_csv_arrow(frame, out, gz)
        except (ImportError, ValueError, TypeError, NotImplementedError):
            # Unusual content (e.g. commas inside values): let pandas quote it.
            frame.to_csv(
                out,
                index=False,
                date_format="%Y-%m-%d %H:%M:%S",
                float_format="%.2f",
                compression={"method": "gzip", "mtime": 0, "compresslevel": 6} if gz else None,
            )
    else:
        raise ValueError(
            f"unsupported output extension for {out.name!r}: use .csv, .csv.gz or .parquet"
        )
    return out


def _write_csv_arrow(frame: pd.DataFrame, out: pathlib.Path, gz: bool) -> None:
    """Fast CSV writer (about 10x pandas on millions of rows)."""
    import gzip

    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if "unit_price" in frame.columns:
        cents = np.round(frame["unit_price"].to_numpy(np.float64), 2)
        price = pa.array(cents).cast(pa.decimal128(18, 2))  # prints as 7.60, not 7.6
        table = table.set_column(table.schema.get_field_index("unit_price"), "unit_price", price)
    header = (",".join(table.column_names) + "\n").encode()
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    if gz:
        with gzip.GzipFile(out, "wb", compresslevel=6, mtime=0) as handle:
            handle.write(header)
            pacsv.write_csv(table, handle, write_options=options)
    else:
        with open(out, "wb") as handle:
            handle.write(header)
            pacsv.write_csv(table, handle, write_options=options)


def write_sample() -> pathlib.Path:
    """Rebuild the shipped sample from :data:`SAMPLE_SPEC`."""
    return write_events(generate_events(**SAMPLE_SPEC), sample_path())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m assets.generator",
        description="Generate a synthetic e-commerce event log (BG/NBD customer behaviour).",
    )
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--users", type=int, help="number of customers to simulate")
    size.add_argument("--events", type=int, help="approximate number of rows wanted")
    size.add_argument("--sample", action="store_true", help="rebuild the shipped sample file")
    parser.add_argument("--out", help="output file: .csv, .csv.gz or .parquet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", default="2023-01-01", help="first day (YYYY-MM-DD)")
    parser.add_argument("--days", type=int, default=730, help="length of the period in days")
    args = parser.parse_args(argv)

    if args.sample:
        path = write_sample()
        print(f"wrote {path.name} ({SAMPLE_DESCRIPTION})")
        return 0
    if not args.out:
        parser.error("--out is required with --users/--events")
    kw = {"seed": args.seed, "start": args.start, "days": args.days}
    if args.users is not None:
        frame = generate_events(args.users, **kw)
    else:
        frame = generate_for_events(args.events, **kw)
    path = write_events(frame, args.out)
    n_users = frame["customer_id"].nunique()
    print(f"wrote {len(frame):,} events for {n_users:,} customers to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
