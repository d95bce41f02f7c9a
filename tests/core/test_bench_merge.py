"""Merging partial benchmark runs (a part can contribute some of its sections only), the benchmark's registry
(every job a mode plans runs a registered step of its own section), and the reports of the offers, Spark and service
sections from recorded measurements (nothing is measured here)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.merge import parse_part, select_sections


def _result() -> dict:
    jobs = [{"section": sec, "key": f"{sec}/x", "step": sec, "params": {}, "results": [{"measures": {"s": 1.0}}]}
            for sec in ("features", "scoring", "app")]
    return {"mode": "full", "jobs": jobs,
            "meta": {"sections": ["features", "scoring", "app"], "feature_agreement": {"1M": "all equal"}}}


def test_a_part_can_give_some_sections_only():
    folder, keep = parse_part("runs/a:features+app")
    assert str(folder) == "runs/a" and keep == {"features", "app"}
    picked = select_sections(_result(), keep)
    assert [j["section"] for j in picked["jobs"]] == ["features", "app"]
    assert picked["meta"]["sections"] == ["features", "app"]
    assert picked["meta"]["feature_agreement"] == {"1M": "all equal"}
    scoring = select_sections(_result(), {"scoring"})
    assert [j["key"] for j in scoring["jobs"]] == ["scoring/x"] and scoring["meta"]["feature_agreement"] == {}


def test_a_whole_part_and_an_unknown_section():
    assert parse_part("runs/b") == (Path("runs/b"), None)
    assert select_sections(_result(), None) == _result()
    with pytest.raises(SystemExit, match="no section"):
        select_sections(_result(), {"quality"})


@pytest.mark.parametrize("mode", ["quick", "full"])
def test_every_planned_job_runs_a_registered_step_of_its_section(mode):
    from bench.modes import MODES
    from bench.registry import STEPS
    from bench.run import plan
    from bench.sections import SECTIONS

    prep, jobs = plan(dict(MODES[mode]), list(SECTIONS), "cache")
    assert {j.section for j in jobs} == set(SECTIONS)
    assert {"offers", "spark", "serve"} <= set(SECTIONS)
    for job in prep + jobs:
        assert job.step in STEPS, job.key
        assert STEPS[job.step].section == job.section, job.key
    assert len({j.key for j in prep + jobs}) == len(prep + jobs)
    assert {j.step for j in prep} == {"generate", "canonical", "serve_run"}  # logs first, then what derives from them
    assert [j.step for j in prep].index("canonical") > max(i for i, j in enumerate(prep) if j.step == "generate")


def test_spark_without_pyspark_or_java_plans_one_step_that_says_why(monkeypatch):
    from bench.modes import MODES
    from bench.sections import spark

    monkeypatch.setattr(spark, "_unavailable", lambda: "PySpark is not installed")
    jobs = spark.plan(dict(MODES["quick"]), "cache").jobs
    assert [(j.step, j.once) for j in jobs] == [("spark_engine", True)]
    assert spark.spark_engine("cache", 200_000) == {"measures": {}, "info": {"skipped": "PySpark is not installed"}}


def _job(section: str, key: str, step: str, params: dict, measures: dict, info: dict | None = None, **extra) -> dict:
    run = {"measures": measures, "info": info or {}, "peak_rss_mb": 500.0, "load": [1.0, 1.5], **extra}
    return {"section": section, "key": key, "step": step, "params": params, "once": False, "results": [run]}


def _new_sections_part() -> dict:
    """A measured part of the offers, spark and serve sections, as ``results.json`` stores it."""
    n = {"cache": "c", "n": 1_000_000}
    rows = [{"recommender": r, "precision": 0.3, "recall": 0.1, "ndcg": 0.35, "hit_rate": 0.8, "novelty": 0.05,
             "users": 1931} for r in ("popularity", "blend")]
    acc = {"cutoff": "2010-09-10", "buyers": 1934, "reference_p10": 0.302, "shipped_p10": 0.349, "p10_ratio": 1.154,
           "reference_ndcg10": 0.348, "shipped_ndcg10": 0.400, "ndcg10_ratio": 1.150, "coverage": 1.0}
    blend = {"discovery": "similar", "depth": 10, "note": "Learned on an earlier split."}
    phases = {"read": 1.0, "canonical": 2.0, "features": 3.0, "total": 7.0, "without_session": 7.0}
    serve = {f"{s}_c{c}_{m}": 0.008 for s in ("rows", "events") for c in (1, 8) for m in ("p50", "p99", "cpu")}
    jobs = [
        _job("offers", "offers/1M/product", "offers_product", n, {"total": 8.0, "cpu": 7.0},
             {"users": 15_463, "blend": "similar, depth 10"}),
        _job("offers", "offers/1M/popularity", "offers_popularity", n, {"total": 1.0, "cpu": 0.2}),
        _job("offers", "offers/quality/orii/2010-09-10", "offers_quality", {"data": "orii", "cutoff": "2010-09-10"},
             {"evaluate": 20.0}, evaluation={"data": "Online Retail II", "cutoff": "2010-09-10", "rows": rows,
                                             "blend": blend, "acceptance": acc}),
        _job("spark", "spark/1M/spark", "spark_engine", n, {**phases, "session": 12.0, "collect": 1.0,
                                                            "total": 19.0}, {"events": 985_135, "rows_out": 131_427}),
        _job("spark", "spark/1M/duckdb", "spark_duckdb", n, phases, {"events": 985_135, "rows_out": 131_427}),
        _job("serve", "serve/gbm/service", "serve_service", {"key": "gbm"}, {**serve, "batch": 0.04, "batch_cpu": 0.03},
             {"batch_users": 1000}),
        _job("serve", "serve/gbm/bare", "serve_bare", {"key": "gbm"}, {"one": 0.004, "batch": 0.009}),
    ]
    meta = {"date": "2025-01-01 00:00", "cores": 2, "platform": "test", "python": "3", "runs": 1,
            "sections": ["offers", "spark", "serve"], "total_seconds": 60.0}
    from bench.modes import MODES

    return {"mode": "full", "meta": meta, "config": dict(MODES["full"]), "jobs": jobs}


def test_the_new_sections_report_their_tables_and_targets():
    from bench.measures import job_from_dict
    from bench.report import build_report

    part = _new_sections_part()
    result, md = build_report([job_from_dict(j) for j in part["jobs"]], part["config"], "full", part["meta"])
    for heading in ("## 7. Offers", "Acceptance (offers written", "## 8. Spark engine", "Where the time goes",
                    "## 9. Scoring service", "Latency of one user per request"):
        assert heading in md
    judged = {t["target"]: t["pass"] for t in result["targets"]}
    assert judged["Offers for 1M events under 10 s on 2 cores, wall time"] is True
    assert judged["Offers at least 3% above buy-again on precision@10 and NDCG@10: Online Retail II 2010-09-10"]
    assert judged["Service p99 at most 10 ms, one user from feature rows, gbm, concurrency 1, on 2 cores"] is True
    assert not any("spark" in t.lower() for t in judged)  # Spark has no target: a ratio and where the time goes
    spark = next(r for r in result["rows"] if r["section"] == "spark" and "excluded" in r["step"])
    assert spark["ratio"] == 1.0 and "43% features" in spark["note"]


def test_merging_parts_pools_the_runs_of_the_new_sections(tmp_path):
    import json

    from bench.merge import merge

    for name, wall in (("a", 8.0), ("b", 12.0)):
        part = _new_sections_part()
        part["jobs"][0]["results"][0]["measures"]["total"] = wall
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(part))
    assert merge([str(tmp_path / "a"), str(tmp_path / "b:offers")], tmp_path / "c") == 0
    merged = json.loads((tmp_path / "c" / "results.json").read_text())
    cost = next(r for r in merged["rows"] if r["section"] == "offers")
    assert cost["runs"] == 2 and cost["seconds"] == 10.0
    assert {j["section"] for j in merged["jobs"]} == {"offers", "spark", "serve"}
