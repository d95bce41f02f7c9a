"""Offers: what the benchmark's offers section measures (``bench/sections/offers.py`` plans and reports it).

    python -m bench.run --quick --only offers        # 200k events, quality at one cutoff
    python -m bench.run --full --only offers         # 1M and 10M events, quality at two cutoffs, three runs
    python -m bench.bench_recommend ARGS             # the same as python -m bench.run --only offers ARGS

Cost (:func:`offer_lists`): from the canonical event table of a generated log (``assets.generator``), the shipped
recommender (:class:`retention_core.recommend.Recommender`: the inner split, the repeat model, similarity, ALS when
chosen) is fitted and lists 10 offers for every customer active in the last 365 days; beside it, the popularity
baseline (the same log, the 90-day best sellers for every such customer). Wall time and CPU time (all threads).

Quality (:func:`evaluate`): offers made from the events up to a cutoff, scored against what the customers bought in
the next 90 days (precision, recall, NDCG, hit rate at 10 and the share of offers new to the customer), for every
candidate and the blend (:func:`retention_core.recommend.evaluate_recommenders`); on Online Retail II also the
reference buy-again list of ``bench/reference_recommend.py`` scored by its own rules on the offers ``recommend``
writes for the log cut at the cutoff (the acceptance check).
"""
from __future__ import annotations

import sys
import time

from bench.common import DATA

ORII = DATA / "online_retail_ii_2009_2010.parquet"
ORII_CUTOFFS = ("2010-09-10", "2010-08-11")
COST_TARGETS = {1_000_000: 10, 10_000_000: 60}  # events -> seconds, on 2 cores
ACCEPTANCE_RATIO = 1.03  # the shipped offers against buy-again, on precision@10 and NDCG@10
ACCEPTANCE_COVERAGE = 0.95


def offer_lists(kind: str, ev) -> dict:
    """Time ``kind`` (``product``: fit the recommender and list 10 offers; ``popularity``: the 90-day best sellers)
    for every customer active in the last 365 days of the canonical table ``ev`` (libraries imported before the
    clock, as in a running app)."""
    import numpy as np

    import implicit.cpu.als  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    from retention_core.recommend import candidates as C
    from retention_core.recommend.blend import POPULAR, assemble
    from retention_core.recommend.data import build_log
    from retention_core.recommend.model import Recommender

    w, c = time.perf_counter(), time.process_time()
    log = build_log(ev)
    users = log.active_users(365)
    info = {}
    if kind == "product":
        rec = Recommender().fit(log)
        offers = rec.recommend(users, 10)
        info = {"blend": rec.blend_.discovery + f", depth {rec.blend_.depth}", "fit_parts": rec.seconds_}
    else:
        with C.single_thread():
            stats = C.pair_stats(log)
            none = (np.zeros(0, np.int64),) * 2 + (np.zeros(0),)
            lists = assemble(none, none, POPULAR, C.popularity(stats), users, 10, 10)
        offers = lists["user"]
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    return {"measures": {"total": wall, "cpu": cpu},
            "info": {"events": int(len(ev)), "users": int(len(users)), "offers": int(len(offers)), **info}}


def _orii_acceptance(raw, T: str) -> dict:
    """The acceptance check: ``recommend`` on the log cut at T, scored with the reference's rules."""
    import pandas as pd

    from bench.reference_recommend import buy_again, metrics, purchases, score_offers, truth_and_users
    from retention_core.recommend import offers_from_table
    from retention_core.roles import infer_schema

    cut = raw[pd.to_datetime(raw["InvoiceDate"]) < pd.Timestamp(T)]
    offers = offers_from_table(cut, infer_schema(cut, {"product": "StockCode"}), as_of=T, n=10)
    p = purchases(raw)
    truth, users = truth_and_users(p, T)
    ref, got = metrics(buy_again(p, T, users), truth), score_offers(offers, truth)
    return {"cutoff": T, "buyers": ref["buyers"], "reference_p10": ref["precision@k"],
            "reference_ndcg10": ref["ndcg@k"], "shipped_p10": got["precision@k"], "shipped_ndcg10": got["ndcg@k"],
            "coverage": got["coverage"], "p10_ratio": got["precision@k"] / ref["precision@k"],
            "ndcg10_ratio": got["ndcg@k"] / ref["ndcg@k"]}


def evaluate(data: str, cutoff: str | None = None) -> dict:
    """Offer quality on ``data`` (``orii``: Online Retail II at ``cutoff``, with the acceptance check; ``sample``:
    the shipped sample, 90 days before its end): ``{"data", "cutoff", "rows", "blend", "acceptance"}``, or
    ``{"skipped": why}`` when the data set is not there."""
    import pandas as pd

    from assets.generator import sample_path
    from retention_core.dataset import data_end
    from retention_core.events import canonical_events
    from retention_core.io import read_table
    from retention_core.recommend import evaluate_recommenders
    from retention_core.roles import infer_schema

    if data == "orii" and not ORII.exists():
        return {"data": "Online Retail II", "cutoff": cutoff, "skipped": f"{ORII.name} not found in ../shared/data"}
    raw = read_table(ORII if data == "orii" else sample_path())
    ev = canonical_events(raw, infer_schema(raw))
    T = cutoff or str((data_end(ev) - pd.Timedelta(days=90)).date())
    table = evaluate_recommenders(ev, T, horizon=90, k=10)
    return {"data": "Online Retail II" if data == "orii" else "shipped sample", "cutoff": T,
            "rows": table.to_dict("records"), "blend": table.attrs["blend"],
            "acceptance": _orii_acceptance(raw, T) if data == "orii" else None}


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.bench_recommend ARGS`` runs ``python -m bench.run --only offers ARGS`` (``--quality``, from
    when this was a script of its own, is dropped: the section always measures quality too)."""
    from bench.run import main as run

    args = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--quality"]
    return run(["--only", "offers", *args])


if __name__ == "__main__":
    raise SystemExit(main())
