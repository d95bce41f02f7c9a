"""The app's navigation: its sections and pages, declared once, drawn by the app itself as links in the sidebar.

Streamlit takes a folder named ``pages/`` beside the main script for an old-style multipage app until ``st.navigation``
runs for the first time in the server process. On that first run it draws the folder's files by name (``app``,
``at risk``, ``data``, ...) in the sidebar, and a first visit straight to a page's address (``/at_risk``) runs that
page's script alone, without the router. Two things keep both away from the analyst:

- ``client.showSidebarNavigation = false`` in ``.streamlit/config.toml``: Streamlit never draws a list of pages in
  the sidebar, neither the file names nor the router's. So the router declares its pages with ``position="hidden"``
  (they keep their addresses and titles) and :func:`sidebar_links` draws the sections and their pages with
  ``st.page_link``.
- :func:`ensure_routed`, which :func:`ui.widgets.page_header` calls first thing on every page: a page started
  without the router runs the router in its place, which declares the app's navigation (ending the old-style mode
  for the whole server) and runs the same page inside the app.
"""
from __future__ import annotations

import runpy
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator, NamedTuple

import streamlit as st


class PageSpec(NamedTuple):
    script: str  # relative to app.py
    title: str
    icon: str


#: Section -> its pages, in the order the sidebar shows them; the first page is the one the app opens on.
SECTIONS: dict[str, list[PageSpec]] = {
    "Data": [PageSpec("pages/data.py", "Data", ":material/database:")],
    "Models": [
        PageSpec("pages/train.py", "Train", ":material/model_training:"),
        PageSpec("pages/evaluate.py", "Evaluate", ":material/query_stats:"),
        PageSpec("pages/models.py", "Models", ":material/inventory_2:"),
    ],
    "Insight": [
        PageSpec("pages/explain.py", "Explain", ":material/psychology:"),
        PageSpec("pages/segments.py", "Segments", ":material/donut_small:"),
    ],
    "Action": [
        PageSpec("pages/at_risk.py", "At-risk", ":material/person_alert:"),
        PageSpec("pages/monitor.py", "Monitor", ":material/monitor_heart:"),
    ],
}
DEFAULT_PAGE = SECTIONS["Data"][0].script

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app.py"  # the router
#: True while the router runs a page (see :func:`routed`).
_ROUTED: ContextVar[bool] = ContextVar("retention_routed", default=False)


def declare() -> st.Page:
    """The app's navigation, with its sections, declared to Streamlit and not drawn by it; the page to run."""
    pages = {section: [st.Page(p.script, title=p.title, icon=p.icon, default=p.script == DEFAULT_PAGE)
                       for p in specs] for section, specs in SECTIONS.items()}
    return st.navigation(pages, position="hidden")


def sidebar_links() -> None:
    """Each section's name and a link to each of its pages (the current page is highlighted)."""
    for section, specs in SECTIONS.items():
        st.caption(f"**{section}**")
        for p in specs:
            st.page_link(p.script, label=p.title, icon=p.icon)


@contextmanager
def routed() -> Iterator[None]:
    """``with routed(): page.run()``: marks the pages run inside it as run by the router."""
    token = _ROUTED.set(True)
    try:
        yield
    finally:
        _ROUTED.reset(token)


def ensure_routed() -> None:
    """Nothing when the router runs this page. A page started without it (Streamlit's old-style mode: on a fresh
    server's first run at a page's address; in ``AppTest``, on every run but a first one at the app's root) runs the
    router here instead, in the same run: ``app.py`` declares the app's navigation, which ends the old-style mode,
    draws the sidebar and runs this same page inside the app, widgets and clicks included; then the page started
    alone stops before drawing anything."""
    if _ROUTED.get():
        return
    with routed():  # the router runs the page; were it ever not to mark it, the page would not loop back here
        runpy.run_path(str(APP_SCRIPT), run_name="__main__")
    st.stop()
