"""Emily's walk through the tutor portal (PRD Persona 3, "Weekly check-in"), in Chromium: she signs in through the
/login form, lands on her dashboard, reads this week's figures and the charts, opens Feedback & Growth from the
menu and reads the anonymised feedback and her recommended training, then follows it to Resources. Each page is
checked for console errors, failed requests, CSP violations and axe findings (tests/browser/pages.check), and again
at a phone's width. The world is tests/integration/test_tutor_portal.seed_portal_world, seeded into the shared
browser site next to the access world.
"""
from __future__ import annotations

import re
import pytest

from tests.auth import PASSWORD
from tests.browser.pages import MOBILE, Site, Visit, check, horizontal_overflow, main_heading, open_tab
from tests.integration.test_tutor_portal import PortalWorld, seed_portal_world

CHART_DRAWN = "() => [...document.querySelectorAll('canvas[data-chart-config]')].map((c) => c.dataset.chartDrawn || '')"


@pytest.fixture(scope="module")
def emily(site: Site) -> PortalWorld:
    return seed_portal_world(site.engine, tag="browser")


def _problems(visit: Visit, name: str, heading: str, forbidden: list[str], *, phone: bool = False) -> list[str]:
    found = []
    if not re.fullmatch(heading, shown := main_heading(visit.page)):
        found.append(f"main heading {shown!r} does not match {heading!r}")
    if phone and (overflow := horizontal_overflow(visit.page)) > 0:
        found.append(f"{overflow}px wider than the {MOBILE['width']}px screen")
    html = visit.page.content().lower()
    found += [f"shows {w!r}" for w in forbidden if w in html]
    return found + check(visit, name)


def test_emily_checks_in_on_her_week(site: Site, browser, emily: PortalWorld) -> None:  # noqa: ANN001
    context = browser.new_context(base_url=site.base_url)
    context.set_default_timeout(10_000)
    forbidden = emily.forbidden()
    try:
        visit = open_tab(context)
        visit.goto("/login")
        visit.page.get_by_label("Email").fill(f"{emily.user_id}@example.test")
        visit.page.get_by_label("Password").fill(PASSWORD)
        with visit.page.expect_navigation():
            visit.page.get_by_role("button", name="Sign in").click()
        assert visit.page.url == f"{site.base_url}/portal", visit.page.url  # a tutor lands on the portal
        page = visit.page
        page.wait_for_function("() => document.querySelectorAll('canvas[data-chart-drawn]').length === 2")
        assert page.evaluate(CHART_DRAWN) == ["1", "1"]  # Chart.js drew both under the strict CSP
        assert page.locator("#tier").get_by_text("Growing").is_visible()
        sessions = " ".join(page.locator("#week-sessions").inner_text().split())
        assert sessions.startswith("Sessions held 3 Last week: 2"), sessions
        assert "4.67 / 5" in page.locator("#week-rating").inner_text()
        assert page.locator("#badge-no_reschedule_4.earned").is_visible()
        assert page.locator("#peer-comparison").is_visible()
        assert page.locator("nav[aria-label=Main] a[aria-current=page]").inner_text() == "My performance"
        problems = _problems(visit, "tutor-portal", r"Welcome back, Emily!", forbidden)

        with page.expect_navigation():
            page.get_by_role("link", name="Feedback & growth").click()
        assert page.url.endswith("/portal/feedback")
        assert page.locator("article.counts-only").get_by_text("only the count is shown").is_visible()
        assert page.get_by_text("Thanks so much! [name]").is_visible()
        training = page.locator("#recommended-training")
        assert training.get_by_role("link", name="Patience and encouraging feedback").is_visible()
        problems += _problems(visit, "tutor-portal-feedback", r"Feedback & growth", forbidden)

        with page.expect_navigation():
            training.get_by_role("link", name="Patience and encouraging feedback").click()
        assert page.url.endswith("/portal/resources#module-patience_and_feedback")
        assert page.locator("#module-patience_and_feedback").is_visible()
        problems += _problems(visit, "tutor-portal-resources", r"Resources", forbidden)
        visit.close()

        for path, name, heading in (("/portal", "tutor-portal-mobile", r"Welcome back, Emily!"),
                                    ("/portal/feedback", "tutor-portal-feedback-mobile", r"Feedback & growth")):
            with open_tab(context, viewport=MOBILE) as phone:
                assert phone.goto(path).status == 200
                problems += _problems(phone, name, heading, forbidden, phone=True)
        assert not problems, "\n  ".join(problems)
    finally:
        context.close()
