"""The first paint after ``streamlit run app.py`` shows the app's own navigation, never Streamlit's file listing.

Streamlit takes a folder named ``pages/`` next to the main script for an old-style multipage app: on the first run
after the server starts it sends a sidebar that lists that folder's files by name (``app``, ``at risk``, ``data``,
...), and only then does the router's ``st.navigation`` replace it with the app's sections; a first visit straight to
a page's address even ran that page alone, without the router. Both happen once per server process, so each test here
starts its own server and is its first visitor. Every navigation message the server sends is read off the websocket,
and a script that runs before the page's own records every set of sidebar links the browser ever shows.
"""
from __future__ import annotations

from typing import Callable

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from bench.browser import wait_visible

pytestmark = pytest.mark.e2e

#: The app's navigation as app.py declares it: section -> page titles, in order.
APP_NAV = {"Data": ["Data"], "Models": ["Train", "Evaluate", "Models"], "Insight": ["Explain", "Segments"],
           "Action": ["At-risk", "Monitor"]}
APP_TITLES = [t for titles in APP_NAV.values() for t in titles]
RENDER_MS = 90_000

#: Before any of the page's scripts: keep every distinct list of sidebar link labels (the last line of each link;
#: the line before is the icon's ligature name).
RECORD_SIDEBAR_LINKS = """
window.__sidebarLinks = [];
new MutationObserver(() => {
  const nav = document.querySelector('[data-testid="stSidebarNav"]');
  if (!nav) return;
  const labels = [...nav.querySelectorAll('a')].map(a => (a.innerText || '').trim().split('\\n').pop().trim());
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


def _first_visit(page, url: str, ready: Callable) -> tuple[list[list[tuple[str, str]]], list[list[str]]]:
    """Open ``url`` and wait for the element ``ready(page)`` and the sidebar links; returns the navigation messages
    received (each a list of (section, title)) and the sidebar link labels the page showed over time."""
    navigations: list[list[tuple[str, str]]] = []

    def on_frame(payload) -> None:
        if isinstance(payload, str):
            return
        msg = ForwardMsg()
        msg.ParseFromString(payload)
        if msg.WhichOneof("type") == "navigation":
            navigations.append([(p.section_header, p.page_name) for p in msg.navigation.app_pages])

    page.on("websocket", lambda ws: ws.on("framereceived", on_frame))
    page.add_init_script(RECORD_SIDEBAR_LINKS)
    page.goto(url)
    wait_visible(ready(page), RENDER_MS)
    wait_visible(page.get_by_test_id("stSidebarNav").get_by_role("link"), RENDER_MS)
    page.wait_for_timeout(500)  # anything still on its way would arrive now
    return navigations, page.evaluate("() => window.__sidebarLinks")


def _assert_only_the_apps_navigation(navigations: list, shown: list) -> None:
    expected = [(section, title) for section, titles in APP_NAV.items() for title in titles]
    assert navigations, "no navigation message was received"
    for i, nav in enumerate(navigations):
        assert nav == expected, f"navigation message {i + 1} of {len(navigations)} is not the app's: {nav}"
    assert shown, "the sidebar never showed links"
    for labels in shown:
        assert labels == APP_TITLES, f"the sidebar showed {labels} before or instead of the app's pages"


def test_first_paint_shows_the_apps_navigation(tab, fresh_server):
    navigations, shown = _first_visit(tab, fresh_server.url, lambda p: p.get_by_text("What we understood"))
    _assert_only_the_apps_navigation(navigations, shown)
    assert "Retention studio" in tab.get_by_test_id("stSidebar").inner_text()


def test_a_first_visit_to_a_page_address_runs_the_router(tab, fresh_server):
    """The Train page opened by its address before anyone opened the app: the router's sidebar is there too."""
    heading = lambda p: p.get_by_test_id("stHeading").filter(has_text="Train")  # noqa: E731
    navigations, shown = _first_visit(tab, fresh_server.url + "train", heading)
    _assert_only_the_apps_navigation(navigations, shown)
    assert "Retention studio" in tab.get_by_test_id("stSidebar").inner_text()

