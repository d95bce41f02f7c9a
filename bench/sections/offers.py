"""Section 7: offers. Cost: the shipped recommender fitted on generated logs and listing 10 offers for every active
customer, against the popularity baseline. Quality: precision, recall, NDCG and hit rate at 10 on Online Retail II
and the shipped sample, and the acceptance check against a hand-written buy-again list (measured by
``bench/bench_recommend.py``)."""
from __future__ import annotations

from bench.common import fmt_seconds, size_label
from bench.data import canonical_file, canonical_job
from bench.measures import Job, Rows, info, load_text, median
from bench.registry import Plan, Section, step

NAME = "offers"
COST = "Offers: fit + 10 offers for every customer active in the last 365 days"


@step("offers_product", NAME)
def offers_product(cache: str, n: int) -> dict:
    import pandas as pd

    from bench.bench_recommend import offer_lists

    return offer_lists("product", pd.read_parquet(canonical_file(cache, n)))


@step("offers_popularity", NAME)
def offers_popularity(cache: str, n: int) -> dict:
    import pandas as pd

    from bench.bench_recommend import offer_lists

    return offer_lists("popularity", pd.read_parquet(canonical_file(cache, n)))


@step("offers_quality", NAME)
def offers_quality(data: str, cutoff: str | None) -> dict:
    import time

    from bench.bench_recommend import evaluate

    t = time.perf_counter()
    out = evaluate(data, cutoff)
    return {"measures": {"evaluate": time.perf_counter() - t}, "info": {}, "evaluation": out}


def plan(cfg: dict, cache: str) -> Plan:
    from bench.bench_recommend import ORII_CUTOFFS

    out = Plan()
    for n in cfg["offer_events"]:
        out.events[n] = False
        out.prep.append(canonical_job(cache, n))
        for v in ("product", "popularity"):
            out.jobs.append(Job(NAME, f"offers/{size_label(n)}/{v}", f"offers_{v}", {"cache": cache, "n": n}))
    for c in ORII_CUTOFFS[:cfg["offer_cutoffs"]]:
        out.jobs.append(Job(NAME, f"offers/quality/orii/{c}", "offers_quality", {"data": "orii", "cutoff": c},
                            once=True))
    out.jobs.append(Job(NAME, "offers/quality/sample", "offers_quality", {"data": "sample", "cutoff": None},
                        once=True))
    return out


def _cost(t: Rows) -> list[dict]:
    """One speed row per log size (wall time, CPU time in the notes); what the targets judge."""
    cost = []
    for p in t.section_jobs(NAME):
        if p.step != "offers_product":
            continue
        s = p.key.split("/")[1]
        ref = t.job(f"offers/{s}/popularity")
        wall, cpu, ref_cpu = median(p, "total"), median(p, "cpu"), median(ref, "cpu")
        t.add(NAME, COST, f"{s} events", p, "total", ref, "total",
              "popularity baseline: the 90-day best sellers for the same customers",
              f"{info(p, 'users', 0):,} customers; blend: {info(p, 'blend', '?')}; CPU {fmt_seconds(cpu)} s "
              f"(all threads; popularity {fmt_seconds(ref_cpu)} s); load {load_text(p)}")
        cost.append({"events": p.params["n"], "size": s, "wall": wall, "cpu": cpu,
                     "popularity": median(ref, "total")})
    return cost


def _quality_lines(evaluations: list[dict]) -> list[str]:
    lines = ["Offer quality: offers made from the events up to the cutoff, scored against what the customers bought "
             "in the next 90 days (top 10; the blend is what the product ships).", "",
             "| data | cutoff | recommender | P@10 | R@10 | NDCG@10 | HR@10 | new to user | buyers |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for e in evaluations:
        if "rows" not in e:
            lines.append(f"| {e['data']} | {e.get('cutoff') or ''} | not measured: {e.get('skipped') or e.get('error')}"
                         " | | | | | | |")
            continue
        for r in e["rows"]:
            lab = f"**{r['recommender']}**" if r["recommender"] == "blend" else r["recommender"]
            lines.append(f"| {e['data']} | {e['cutoff']} | {lab} | {r['precision']:.4f} | {r['recall']:.4f} | "
                         f"{r['ndcg']:.4f} | {r['hit_rate']:.4f} | {r['novelty']:.3f} | {r['users']:,} |")
    blends = [f"{e['data']} {e['cutoff']}: {e['blend']['discovery']} after up to {e['blend']['depth']} own products "
              f"({e['blend']['note'].rstrip('.')})" for e in evaluations if e.get("blend")]
    return lines + (["", "Blend chosen on the inner split: " + "; ".join(blends)] if blends else [])


def _acceptance_lines(acceptance: list[dict]) -> list[str]:
    from bench.bench_recommend import ACCEPTANCE_COVERAGE, ACCEPTANCE_RATIO

    lines = ["", f"Acceptance (offers written by `recommend` for the log cut at the cutoff, scored by the rules of "
             f"`bench/reference_recommend.py`; target: ratio >= {ACCEPTANCE_RATIO}, coverage >= "
             f"{ACCEPTANCE_COVERAGE}):", "",
             "| cutoff | buyers | buy-again P@10 | shipped P@10 | ratio | buy-again NDCG@10 | shipped NDCG@10 | ratio | "
             "coverage |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for a in acceptance:
        lines.append(f"| {a['cutoff']} | {a['buyers']:,} | {a['reference_p10']:.4f} | {a['shipped_p10']:.4f} | "
                     f"{a['p10_ratio']:.3f} | {a['reference_ndcg10']:.4f} | {a['shipped_ndcg10']:.4f} | "
                     f"{a['ndcg10_ratio']:.3f} | {a['coverage']:.3f} |")
    return lines


def report(t: Rows) -> None:
    cost = _cost(t)
    evaluations = []
    for j in t.section_jobs(NAME, "offers/quality/"):
        for res in j.results[-1:]:
            label = "Online Retail II" if j.params["data"] == "orii" else "shipped sample"
            evaluations.append(res.get("evaluation")
                               or {"data": label, "cutoff": j.params["cutoff"], "error": res.get("error", "no result")})
    acceptance = [e["acceptance"] for e in evaluations if e.get("acceptance")]
    if evaluations:
        t.tables[NAME] = _quality_lines(evaluations) + (_acceptance_lines(acceptance) if acceptance else [])
    t.details[NAME] = {"cost": cost, "acceptance": acceptance,
                       "not_measured": [e for e in evaluations if e["data"] == "Online Retail II" and "rows" not in e]}


def _cost_targets(cost: list[dict], cores: int) -> list[dict]:
    from bench.bench_recommend import COST_TARGETS

    on = f" (this machine: {cores} cores)" if cores != 2 else ""
    judged = [c for c in cost if c["events"] in COST_TARGETS and c["wall"] is not None]
    if not judged and cost:  # quick mode measures a smaller log: shown, not judged
        c, n = max(cost, key=lambda c: c["events"]), min(COST_TARGETS)
        return [{"target": f"Offers for {size_label(n)} events under {COST_TARGETS[n]} s on 2 cores (measured at "
                           f"{c['size']}; the target is for {size_label(n)})",
                 "value": f"{fmt_seconds(c['wall'])} s wall, {fmt_seconds(c['cpu'])} s CPU; popularity "
                          f"{fmt_seconds(c['popularity'])} s", "pass": None}]
    out = []
    for c in judged:
        limit = COST_TARGETS[c["events"]]
        what = f"Offers for {c['size']} events under {limit} s on 2 cores{on}"
        pop = f"; popularity {fmt_seconds(c['popularity'])} s"
        out.append({"target": what + ", wall time", "value": f"{fmt_seconds(c['wall'])} s" + pop,
                    "pass": c["wall"] < limit})
        out.append({"target": what + ", CPU time of all threads (what bounds the wall time on idle cores)",
                    "value": f"{fmt_seconds(c['cpu'])} s", "pass": c["cpu"] is not None and c["cpu"] < limit})
    return out


def targets(t: Rows) -> list[dict]:
    from bench.bench_recommend import ACCEPTANCE_COVERAGE, ACCEPTANCE_RATIO

    d = t.details.get(NAME)
    if not d:
        return []
    out = _cost_targets(d["cost"], t.meta.get("cores") or 0)
    name = f"Offers at least {ACCEPTANCE_RATIO - 1:.0%} above buy-again on precision@10 and NDCG@10: Online Retail II"
    for a in d["acceptance"]:
        out.append({"target": f"{name} {a['cutoff']}",
                    "value": f"P@10 {a['shipped_p10']:.4f} vs {a['reference_p10']:.4f} (×{a['p10_ratio']:.3f}), "
                             f"NDCG@10 {a['shipped_ndcg10']:.4f} vs {a['reference_ndcg10']:.4f} "
                             f"(×{a['ndcg10_ratio']:.3f}), coverage {a['coverage']:.3f}",
                    "pass": bool(a["p10_ratio"] >= ACCEPTANCE_RATIO and a["ndcg10_ratio"] >= ACCEPTANCE_RATIO
                                 and a["coverage"] >= ACCEPTANCE_COVERAGE)})
    for e in d["not_measured"]:
        out.append({"target": f"{name} {e.get('cutoff') or ''}".rstrip(),
                    "value": "not measured: " + str(e.get("skipped") or e.get("error")), "pass": None})
    return out


SECTION = Section(NAME, "7. Offers: cost and quality", plan, report, targets)
