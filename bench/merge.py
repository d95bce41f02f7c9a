"""One report from partial runs (``--merge A,B``, ``FOLDER:features+app`` for some sections of a part) or again from
the measurements already in a ``results.json`` (``--rebuild``)."""
from __future__ import annotations

import json
from pathlib import Path

from bench.measures import Job, job_from_dict
from bench.report import build_report, with_agreement, write


def parse_part(spec: str) -> tuple[Path, set[str] | None]:
    """A merge part: ``FOLDER`` (all its sections) or ``FOLDER:features+app`` (only these sections, e.g. when a later
    part measured the others again after a change)."""
    folder, _, keep = spec.partition(":")
    return Path(folder), set(keep.split("+")) if keep else None


def select_sections(result: dict, keep: set[str] | None) -> dict:
    """A part's ``results.json`` content with only the sections in ``keep`` (all of them when None)."""
    if keep is None:
        return result
    unknown = keep - set(result["meta"]["sections"])
    if unknown:
        raise SystemExit(f"error: the part has no section(s) {sorted(unknown)}; it has {result['meta']['sections']}")
    return {**result, "jobs": [j for j in result["jobs"] if job_from_dict(j).section in keep],
            "meta": {**result["meta"], "sections": [x for x in result["meta"]["sections"] if x in keep],
                     "feature_agreement": result["meta"].get("feature_agreement") if "features" in keep else {}}}


def _pooled_jobs(olds: list[dict]) -> list[Job]:
    """Every part's jobs; the same step in several parts becomes one job with all their runs."""
    jobs: list[Job] = []
    by_key: dict[str, Job] = {}
    for o in olds:
        for j in o["jobs"]:
            if j["key"] in by_key:  # the same step in another part: more runs of it
                job = by_key[j["key"]]
                job.results.extend(j["results"])
                job.peaks = job_from_dict(j, job.results).peaks
                continue
            by_key[j["key"]] = job_from_dict(j)
            jobs.append(by_key[j["key"]])
    for job in jobs:  # folders of the machine that ran it say nothing to a reader
        if "cache" in job.params:
            job.params = {**job.params, "cache": "OUT/cache"}
    return jobs


def merge(specs: list[str], out: Path) -> int:
    """One report from several partial runs of the same mode (e.g. ``--only features,scoring,app`` with three runs and
    ``--only training,shap,quality --runs 1``): the steps of every part, each with its own number of runs (see
    :func:`parse_part` to take some sections of a part only)."""
    parts = [parse_part(x) for x in specs]
    olds = [select_sections(json.loads((p / "results.json").read_text()), keep) for p, keep in parts]
    modes = {o["mode"] for o in olds}
    if len(modes) != 1:
        raise SystemExit(f"error: the parts mix modes {sorted(modes)}; merge runs of one mode only")
    sections, runs, total, agree = [], [], 0.0, {}
    for o in olds:
        sections += [s for s in o["meta"]["sections"] if s not in sections]
        runs.append(f"{o['meta']['runs']} ({', '.join(o['meta']['sections'])})")
        total += o["meta"]["total_seconds"]
        agree.update(o["meta"].get("feature_agreement") or {})
    cfg = dict(olds[0]["config"])
    for o in olds[1:]:
        for k, v in o["config"].items():
            cfg.setdefault(k, v)
    meta = {**olds[-1]["meta"], "runs": "; ".join(runs), "sections": sections, "total_seconds": total,
            "date": max(o["meta"]["date"] for o in olds), "feature_agreement": agree,
            "parts": [p.name + (":" + "+".join(sorted(keep)) if keep else "") for p, keep in parts]}
    result, md = build_report(_pooled_jobs(olds), cfg, olds[0]["mode"], meta)
    md = with_agreement(md, agree)
    write(out, result, md)
    print(md)
    return 0


def rebuild(out: Path) -> int:
    """The report again from the measurements already in ``results.json`` (after a change to the report only)."""
    old = json.loads((out / "results.json").read_text())
    jobs = [job_from_dict(j) for j in old["jobs"]]
    result, md = build_report(jobs, old["config"], old["mode"], old["meta"])
    md = with_agreement(md, old["meta"].get("feature_agreement") or {})
    write(out, result, md)
    print(md)
    return 0
