"""Jobs and their measurements: a job is one step with its parameters and the results of each run; the report reads
medians, the latest info and peaks from it. :class:`Rows` collects the report's rows, section by section."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Job:
    section: str
    key: str           # unique id of the measured thing, e.g. "features/1M/product"
    step: str
    params: dict
    once: bool = False  # quality: deterministic metrics, run a single time
    results: list = field(default_factory=list)
    peaks: list = field(default_factory=list)

    def as_dict(self) -> dict:
        """The job as ``results.json`` stores it."""
        return {"section": self.section, "key": self.key, "step": self.step, "params": self.params, "once": self.once,
                "results": self.results}


def job_from_dict(j: dict, results: list | None = None) -> Job:
    """A job as ``results.json`` stores it (``results``: only these of its results)."""
    results = list(j["results"] if results is None else results)
    job = Job(j.get("section") or j["key"].split("/")[0].replace("export", "scoring"), j["key"], j["step"],
              j["params"], j.get("once", False), results)
    job.peaks = [r["peak_rss_mb"] for r in results if r.get("peak_rss_mb") is not None]
    return job


def only_results(job: Job, keep) -> Job:
    """The same job with only the results for which ``keep(result)`` holds."""
    return job_from_dict({**job.as_dict(), "results": []}, [r for r in job.results if keep(r)])


def median(job: Job | None, measure: str) -> float | None:
    if job is None:
        return None
    vals = [r["measures"][measure] for r in job.results if measure in r.get("measures", {})]
    return statistics.median(vals) if vals else None


def info(job: Job | None, name: str, default=None):
    for r in reversed(job.results if job else []):
        if name in r.get("info", {}):
            return r["info"][name]
    return default


def load_text(job: Job | None) -> str:
    """The machine's 1-minute load average around the job's runs (the runner records it before and after each)."""
    loads = [x for r in (job.results if job else []) for x in r.get("load") or []]
    if not loads:
        return "—"
    lo, hi = f"{min(loads):.1f}", f"{max(loads):.1f}"
    return lo if lo == hi else f"{lo} to {hi}"


def peak(job: Job | None) -> float | None:
    return max(job.peaks) if job and job.peaks else None


class Rows:
    """The report's rows as the sections add them: each compares a product job's measure with a reference job's."""

    def __init__(self, jobs: list[Job], cfg: dict, meta: dict) -> None:
        self.jobs, self.cfg, self.meta = jobs, cfg, meta
        self.by = {j.key: j for j in jobs}
        self.rows: list[dict] = []
        self.quality: list[dict] = []  # model quality on real data (section 6), one row per dataset/cutoff/model
        self.tables: dict[str, list[str]] = {}  # section -> markdown lines shown after its speed table
        self.details: dict[str, dict] = {}  # section -> what its report derived beyond rows, kept in results.json

    def section_jobs(self, section: str, prefix: str = "") -> list[Job]:
        """The jobs of a section (whose key starts with ``prefix``), in plan order."""
        return [j for j in self.jobs if j.section == section and j.key.startswith(prefix)]

    def job(self, key: str) -> Job | None:
        return self.by.get(key)

    def add(self, section, step, size, job, measure, ref_job, ref_measure, ref_label, note="") -> None:
        s, r = median(job, measure), median(ref_job, ref_measure)
        errors = [x["error"] for x in ((job.results if job else []) + (ref_job.results if ref_job else []))
                  if "error" in x]
        self.rows.append({"section": section, "step": step, "size": size, "seconds": s, "reference": ref_label,
                          "reference_seconds": r, "ratio": (s / r) if s and r else None,
                          "peak_rss_mb": peak(job), "reference_peak_rss_mb": peak(ref_job),
                          "runs": len(job.results) if job else 0, "note": note, "errors": errors})


def find_rows(rows: list[dict], section: str, step_start: str, size_start: str = "") -> list[dict]:
    """The report rows of a section whose step (and size) start with these texts."""
    return [r for r in rows if r["section"] == section and r["step"].startswith(step_start)
            and r["size"].startswith(size_start)]
