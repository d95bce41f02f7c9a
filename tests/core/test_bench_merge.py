"""Merging partial benchmark runs (a part can contribute some of its sections only), and the benchmark's registry
(every job a mode plans runs a registered step of its own section)."""
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
    for job in prep + jobs:
        assert job.step in STEPS, job.key
        assert STEPS[job.step].section == job.section, job.key
    assert len({j.key for j in prep + jobs}) == len(prep + jobs)
