"""Opening a page in Chromium and collecting everything wrong with it: console errors, uncaught exceptions, failed
or refused sub-requests, Content-Security-Policy violations and axe-core's serious or critical findings. Every
check saves the page's full-page screenshot and axe's whole report (all impacts) under test-artifacts/.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from tests.integration.access_world import World

if TYPE_CHECKING:  # only for hints: without playwright installed the tests skip (conftest) instead of erroring
    from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Response

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"
ANONYMOUS = "anonymous"  # the "role" of a browser that never signed in
BLOCKING = ("serious", "critical")  # the impacts the acceptance criterion refuses
MOBILE = {"width": 390, "height": 844}

# Installed before any page script runs (init scripts are not subject to the page's CSP): the listener that
# records what the policy blocked, which the page itself cannot report anywhere else.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI || 'inline'}`
                              + ` at ${e.sourceFile || 'the document'}:${e.lineNumber}`);
});
"""

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(' ') + ': ' + (n.failureSummary || '').replace(/\\s+/g, ' ')),
  }));
}"""

# Chromium logs a console error for any 4xx/5xx document, the page under test included; that status is asserted on
# its own (an error page is expected to answer 403 or 404), so only this exact message about that URL is dropped.
_DOCUMENT_STATUS = re.compile(r"^Failed to load resource: the server responded with a status of \d+")


@dataclass
class Site:
    """The running server and what it was seeded with."""

    base_url: str
    engine: Engine
    world: World

    def user_email(self, role: str) -> str:
        return f"{self.world.users[role]}@example.test"  # tests.auth.account's address for a user id


@dataclass
class Visit:
    """One tab and what went wrong in it since it opened (across the navigations a form post makes)."""

    page: Page
    problems: list[str] = field(default_factory=list)
    documents: set[str] = field(default_factory=set)

    def goto(self, path: str) -> Response:
        response = self.page.goto(path, wait_until="load")
        assert response is not None, f"no response for {path}"
        return response

    def close(self) -> None:
        self.page.close()

    def __enter__(self) -> Visit:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_tab(context: BrowserContext, viewport: dict[str, int] | None = None) -> Visit:
    page = context.new_page()
    if viewport:
        page.set_viewport_size(viewport)
    visit = Visit(page)
    page.add_init_script(CSP_LISTENER)

    def on_console(message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "") if message.location else ""
        if url in visit.documents and _DOCUMENT_STATUS.match(message.text):
            return
        visit.problems.append(f"console error: {message.text} ({url})")

    def on_response(response: Response) -> None:
        request = response.request
        if request.is_navigation_request() and request.frame == page.main_frame:
            visit.documents.add(response.url)
            return
        if response.status >= 400:
            visit.problems.append(f"sub-request {request.method} {response.url} answered {response.status}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: visit.problems.append(f"uncaught exception: {exc}"))
    def on_failed(request) -> None:  # noqa: ANN001 - playwright's Request
        # A live page's event stream never ends by itself, and a region it is fetching again may be in flight:
        # leaving the page aborts both, which is no fault. A script, style or image that fails is still reported.
        if "ERR_ABORTED" in (request.failure or "") and request.resource_type in ("eventsource", "fetch", "xhr"):
            return
        visit.problems.append(f"request failed: {request.method} {request.url} ({request.failure})")

    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    return visit


def main_heading(page: Page) -> str:
    heading = page.locator("main h1")
    assert heading.count() == 1, f"{page.url}: expected one <h1> in <main>, found {heading.count()}"
    return " ".join((heading.text_content() or "").split())  # the DOM text: CSS may upper-case what is shown


def check(visit: Visit, name: str) -> list[str]:
    """Everything wrong with the page as it stands: load problems, CSP violations, blocking axe findings. Saves
    test-artifacts/screenshots/<name>.png and test-artifacts/axe/<name>.json (every impact, for the record)."""
    page = visit.page
    found = list(visit.problems)
    found += [f"CSP violation: {v}" for v in page.evaluate("window.__cspViolations || []")]
    # Evaluated through the DevTools protocol, which the page's CSP does not govern (a <script> tag would be
    # refused by script-src 'self', as it should be).
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    violations = page.evaluate(AXE_RUN)
    (ARTIFACTS / "axe").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "axe" / f"{name}.json").write_text(json.dumps(violations, indent=1), encoding="utf-8")
    for v in violations:
        if v["impact"] in BLOCKING:
            nodes = "; ".join(v["nodes"][:5])
            found.append(f"axe {v['impact']} {v['id']} ({v['help']}) on {len(v['nodes'])} node(s): {nodes}")
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "screenshots" / f"{name}.png", full_page=True)
    return found


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than its viewport (0 when nothing scrolls sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
