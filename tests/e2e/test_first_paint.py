"""A fresh server's first visitor sees the app's own navigation, never Streamlit's list of file names.

The page scripts live in ``pages/`` beside ``app.py``, and Streamlit takes such a folder for an old-style multipage
app until ``st.navigation`` runs for the first time in the server process: on that first run it draws the folder's
files by name in the sidebar (``app``, ``at risk``, ``data``, ...), and a first visit straight to a page's address
runs that page's script alone, without the router's navigation and sidebar. Both happen once per server process, so
each test here starts its own server and is its first visitor.

Every navigation message the server sends is read off the websocket, and a script that runs before the page's own
records every set of link labels the sidebar ever shows, whoever draws them (Streamlit's page list or the app's own
links): only the app's page titles may ever appear there.
"""
from __future__ import annotations

from typing import Callable

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.Navigation_pb2 import Navigation

from bench.browser import main_area, wait_settled, wait_visible

pytestmark = pytest.mark.e2e

#: The app's navigation: section -> page titles, in order.
APP_NAV = {"Data": ["Data"], "Models": ["Train", "Evaluate", "Models"], "Insight": ["Explain", "Segments"],
           "Action": ["At-risk", "Monitor"]}
APP_TITLES = [t for titles in APP_NAV.values() for t in titles]
#: Streamlit's own names for the files of pages/ (and app.py), as it lists them in old-style mode.
FILE_NAMES = {"app", "at risk", "data", "evaluate", "explain", "models", "monitor", "segments", "train"}
RENDER_MS = 90_000

#: Before any of the page's scripts: keep every distinct list of link labels in the sidebar (the last line of each
#: link; the line before is the icon's ligature name).
RECORD_SIDEBAR_LINKS = """
window.__sidebarLinks = [];
new MutationObserver(() => {
  const bar = document.querySelector('[data-testid="stSidebar"]');
  if (!bar) return;
  const labels = [...bar.querySelectorAll('a')].map(a => (a.innerText || '').trim().split('\\n').pop().trim());
  const last = window.__sidebarLinks[window.__sidebarLinks.length - 1];
  if (labels.length && JSON.stringify(labels) !== JSON.stringify(last)) window.__sidebarLinks.push(labels);
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


@pytest.fixture()
def tab(browser):
    """A new browser tab of its own (nothing cached from another test)."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()


def _first_visit(page, url: str, ready: Callable) -> tuple[list, list[list[str]]]:
    """Open ``url`` and wait for the element ``ready(page)`` and the end of the run; returns the navigation messages
    received (each a ``Navigation`` message) and the sidebar link labels shown over time."""
    navigations: list = []

    def on_frame(payload) -> None:
        if isinstance(payload, str):
            return
        msg = ForwardMsg()
        msg.ParseFromString(payload)
        if msg.WhichOneof("type") == "navigation":
            navigations.append(msg.navigation)

    page.on("websocket", lambda ws: ws.on("framereceived", on_frame))
    page.add_init_script(RECORD_SIDEBAR_LINKS)
    page.goto(url)
    wait_visible(ready(page), RENDER_MS)
    wait_settled(page, timeout_s=RENDER_MS / 1000)  # the run has finished: the sidebar is drawn, if it ever is
    page.wait_for_timeout(500)  # anything still on its way would arrive now
    return navigations, page.evaluate("() => window.__sidebarLinks")


def _pages(nav) -> list[tuple[str, str]]:
    return [(p.section_header, p.page_name) for p in nav.app_pages]


def _assert_only_the_apps_navigation(page, navigations: list, shown: list[list[str]]) -> None:
    # What the sidebar showed, from the first paint on: only links to the app's pages, all of them in the end.
    assert shown, "the sidebar never showed links"
    for labels in shown:
        assert not FILE_NAMES & set(labels), f"the sidebar showed Streamlit's list of file names: {labels}"
        assert set(labels) <= set(APP_TITLES), f"the sidebar showed links that are not the app's pages: {labels}"
    assert shown[-1] == APP_TITLES, f"the sidebar's links are not the app's pages in order: {shown[-1]}"
    # Each section's name, then its pages (the icons' ligature names sit in between).
    lines = iter(line.strip() for line in page.get_by_test_id("stSidebar").inner_text().splitlines())
    sequence = [name for section, titles in APP_NAV.items() for name in (section, *titles)]
    missing = [name for name in sequence if name not in lines]
    assert not missing, f"the sidebar does not show the sections and their pages in order (from {missing[0]!r} on)"
    # What Streamlit was told: the app's pages last, and no other list it would draw.
    expected = [(section, title) for section, titles in APP_NAV.items() for title in titles]
    assert navigations, "no navigation message was received"
    assert _pages(navigations[-1]) == expected, f"the app's navigation was not declared last: {_pages(navigations[-1])}"
    for i, nav in enumerate(navigations):
        if nav.position != Navigation.Position.HIDDEN:
            assert _pages(nav) == expected, f"navigation message {i + 1} would draw a list that is not the app's: " \
                                            f"{_pages(nav)}"


def test_first_paint_shows_only_the_apps_navigation(tab, fresh_server, screenshot):
    navigations, shown = _first_visit(tab, fresh_server.url, lambda p: p.get_by_text("What we understood"))
    _assert_only_the_apps_navigation(tab, navigations, shown)
    # The router's sidebar: its title, and the summary it fills once the page has run (the sample is loaded).
    wait_visible(tab.get_by_test_id("stSidebar").get_by_text("sample_events.csv.gz"), RENDER_MS)
    screenshot(tab, "first_paint_root")
    assert "Retention studio" in tab.get_by_test_id("stSidebar").inner_text()


def test_a_first_visit_to_a_page_address_opens_it_inside_the_app(tab, fresh_server, screenshot):
    """The At-risk page opened by its address before anyone opened the app: the page itself, inside the router's
    navigation and sidebar."""
    heading = lambda p: main_area(p).get_by_test_id("stHeading").filter(has_text="At-risk")  # noqa: E731
    navigations, shown = _first_visit(tab, fresh_server.url + "at_risk", heading)
    _assert_only_the_apps_navigation(tab, navigations, shown)
    assert tab.url.rstrip("/").endswith("/at_risk")
    body = main_area(tab).inner_text()
    assert "List the users most likely to churn" in body and "Nothing to show yet" in body  # the page's own content
    # The router's sidebar: its title, and the summary it fills once the page has run.
    wait_visible(tab.get_by_test_id("stSidebar").get_by_text("No data loaded yet"), RENDER_MS)
    screenshot(tab, "first_paint_at_risk")
    assert "Retention studio" in tab.get_by_test_id("stSidebar").inner_text()
