"""Merging partial benchmark runs: a part can contribute some of its sections only."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.run import _part, _select


def _result() -> dict:
    jobs = [{"section": sec, "key": f"{sec}/x", "step": sec, "params": {}, "results": [{"measures": {"s": 1.0}}]}
            for sec in ("features", "scoring", "app")]
    return {"mode": "full", "jobs": jobs,
            "meta": {"sections": ["features", "scoring", "app"], "feature_agreement": {"1M": "all equal"}}}


def test_a_part_can_give_some_sections_only():
    folder, keep = _part("runs/a:features+app")
    assert str(folder) == "runs/a" and keep == {"features", "app"}
    picked = _select(_result(), keep)
    assert [j["section"] for j in picked["jobs"]] == ["features", "app"]
    assert picked["meta"]["sections"] == ["features", "app"]
    assert picked["meta"]["feature_agreement"] == {"1M": "all equal"}
    scoring = _select(_result(), {"scoring"})
    assert [j["key"] for j in scoring["jobs"]] == ["scoring/x"] and scoring["meta"]["feature_agreement"] == {}


def test_a_whole_part_and_an_unknown_section():
    assert _part("runs/b") == (Path("runs/b"), None)
    assert _select(_result(), None) == _result()
    with pytest.raises(SystemExit, match="no section"):
        _select(_result(), {"quality"})
