"""Uplift learners on Hillstrom's e-mail experiment: held-out Qini areas beside random and response targeting.

    python -m bench.bench_uplift [--seeds 5] [--sample N] [--out bench/published/uplift.md]

For each outcome (``visit``, ``conversion``) and each contrast (any e-mail against none, the three arms with "No
E-Mail" as control and the two e-mails pooled; then each e-mail alone against none), every learner of the product is
trained exactly as ``python -m retention_core train hillstrom.csv --treatment segment --control-value "No E-Mail"
--label OUTCOME --positive 1 [--treatment-value ARM]`` trains it (30% held out, stratified by arm and outcome) and
judged on the held-out customers. The first tables are the product's own split (seed 0); the last ones repeat the
pooled contrast over ``--seeds`` splits, because one held-out split of 19,200 customers moves the Qini area by about
a quarter of its size. Reads ../shared/data/hillstrom.csv; prints Markdown (and writes it with ``--out``).
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import DATA
from retention_core.uplift.data import Experiment
from retention_core.uplift.training import UpliftConfig, train_uplift

OUTCOMES = ("visit", "conversion")
CONTRASTS = {"any e-mail vs none": None, "men's e-mail vs none": "Mens E-Mail",
             "women's e-mail vs none": "Womens E-Mail"}
ORDER = ["dr_learner", "x_learner", "class_transformation", "two_model", "two_model_gbm", "response", "random"]


def _board(df: pd.DataFrame, outcome: str, treated: str | None, seed: int) -> pd.DataFrame:
    exp = Experiment("segment", "No E-Mail", outcome, 1, treated)
    result = train_uplift(df, exp, UpliftConfig(seed=seed, refit=False))
    board = result.leaderboard.set_index("model")
    board.attrs["best"] = result.best
    board.attrs["held_out"] = len(result.validation)
    return board


def _label(board: pd.DataFrame, key: str) -> str:
    return str(board.loc[key, "label"]).replace("|", "\\|")  # a pipe would end the Markdown cell


def _fmt(v: float, digits: int = 5) -> str:
    return "" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def split_table(df: pd.DataFrame, outcome: str) -> str:
    """The product's split (seed 0): every learner per contrast."""
    boards = {name: _board(df, outcome, arm, 0) for name, arm in CONTRASTS.items()}
    head = "| ranking | kind | " + " | ".join(f"{n}: Qini area | coeff. | top-10% uplift" for n in boards) + " |"
    lines = [head, "|" + "---|" * (2 + 3 * len(boards))]
    for key in ORDER:
        b0 = next(iter(boards.values()))
        cells = [_label(b0, key), str(b0.loc[key, "kind"])]
        for b in boards.values():
            mark = "**" if key == b.attrs["best"] else ""
            cells += [f"{mark}{_fmt(b.loc[key, 'qini_area'])}{mark}", _fmt(b.loc[key, "qini_coefficient"], 3),
                      _fmt(b.loc[key, "uplift_top10"] * 100, 2)]
        lines.append("| " + " | ".join(cells) + " |")
    held = ", ".join(f"{n}: {b.attrs['held_out']:,}" for n, b in boards.items())
    return "\n".join(lines) + f"\n\nHeld-out customers: {held}. Bold: the learner the run picks (largest area)."


def seeds_table(df: pd.DataFrame, outcome: str, seeds: int) -> str:
    """The pooled contrast over several splits: mean and spread, and how often each learner beats the two-model
    learner and response targeting on the same split."""
    boards = [_board(df, outcome, None, s) for s in range(seeds)]
    area = pd.DataFrame({s: b["qini_area"] for s, b in enumerate(boards)})
    coeff = pd.DataFrame({s: b["qini_coefficient"] for s, b in enumerate(boards)})
    lines = ["| ranking | mean Qini area | sd | min | max | mean coeff. | above two models (logistic) | above response |",
             "|---|---|---|---|---|---|---|---|"]
    for key in ORDER:
        a = area.loc[key]
        above_two = int((a > area.loc["two_model"]).sum())
        above_resp = int((a > area.loc["response"]).sum())
        lines.append(f"| {_label(boards[0], key)} | {_fmt(a.mean())} | {_fmt(a.std())} | {_fmt(a.min())} | "
                     f"{_fmt(a.max())} | {_fmt(coeff.loc[key].mean(), 3)} | {above_two} of {seeds} | {above_resp} of {seeds} |")
    diff = area.loc["dr_learner"] - area.loc["two_model"]
    return "\n".join(lines) + (f"\n\nDR-learner minus two models (logistic), per split: "
                               f"{', '.join(_fmt(d) for d in diff)} (mean {_fmt(diff.mean())}).")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5, help="held-out splits of the pooled contrast (default 5)")
    p.add_argument("--sample", type=int, default=0, help="customers drawn from the 64,000 (0 = all)")
    p.add_argument("--out", help="also write the Markdown to this file")
    args = p.parse_args(argv)
    path = Path(DATA) / "hillstrom.csv"
    if not path.is_file():
        print(f"hillstrom.csv not found in {DATA}: nothing measured")
        return 0
    df = pd.read_csv(path)
    if args.sample:
        df = df.sample(args.sample, random_state=0).reset_index(drop=True)
    t0 = time.perf_counter()
    parts = [f"# Uplift on Hillstrom's e-mail experiment ({len(df):,} customers)", "",
             "`python -m bench.bench_uplift" + (f" --sample {args.sample}" if args.sample else "")
             + f" --seeds {args.seeds}`. Qini area: incremental responders per customer above random targeting, "
             "averaged over every campaign size (0 = random); coefficient: the area as a share of a perfect "
             "ranking's; top-10% uplift: the observed uplift, in points, among the 10% ranked first. Response "
             "targeting ranks by P(outcome | treated) (the two-model learner's treated arm); random targeting's "
             "figures are its expectation.", ""]
    for outcome in OUTCOMES:
        parts += [f"## {outcome}: the product's held-out split (seed 0)", "", split_table(df, outcome), ""]
    for outcome in OUTCOMES:
        parts += [f"## {outcome}, any e-mail vs none: {args.seeds} held-out splits", "",
                  seeds_table(df, outcome, args.seeds), ""]
    parts.append(f"Measured in {time.perf_counter() - t0:,.0f} s on {platform.machine()} with Python "
                 f"{platform.python_version()} (2 shared cores).")
    text = "\n".join(parts) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
