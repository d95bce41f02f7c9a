"""What every part of the benchmark shares: where the project and the real data are, and how sizes, times and
ratios are written in the report."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DEEP = ("mlp", "cnn", "gru", "transformer")


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"


def fmt_seconds(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    if ratio <= 1:
        return f"{1 / ratio:.1f}× faster"
    return f"{ratio:.1f}× slower"


def fmt_number(v, digits=4) -> str:
    return "—" if v is None or v != v else f"{v:.{digits}f}"
