"""The tutor profile page in Chromium, as each staff role: its heading, no console error, CSP violation or serious
axe finding (tests/browser/pages.check), its three charts drawn by Chart.js, no sideways scroll at a phone's width,
and, for one role, a note added through the form (CSRF token, redirect, the note shown).
Screenshots: test-artifacts/screenshots/<role>-tutor-profile[-phone].png.
"""
from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.browser.pages import MOBILE, Site, check, horizontal_overflow, main_heading, open_tab
from tests.integration.test_tutor_profile_page import seed_profile_tutor

TUTOR = "tutor_browser_profile"
STAFF = ("ops_manager", "people_ops", "admin")


@pytest.fixture(scope="module")
def profile_path(site: Site) -> str:
    seed_profile_tutor(site.engine, TUTOR)
    return f"/tutors/{TUTOR}"


@pytest.mark.parametrize("role", STAFF)
def test_profile_page(site: Site, contexts: Callable, profile_path: str, role: str) -> None:
    with open_tab(contexts(role)) as visit:
        response = visit.goto(profile_path)
        assert response.status == 200
        assert main_heading(visit.page) == f"Jane Doe (#{TUTOR})"
        # charts.js marks each canvas it handed to Chart.js; Chart.js sizes the canvas to its box when it draws.
        visit.page.wait_for_selector("canvas[data-chart-drawn]")
        drawn = visit.page.locator("canvas[data-chart-drawn]")
        assert drawn.count() == 3
        assert visit.page.evaluate("[...document.querySelectorAll('canvas')].every(c => c.width > 0 && c.height > 0)")
        if role == "people_ops":
            visit.page.fill("#note-body", f"Spoke to the tutor ({role}).")
            visit.page.click("form[action$='/notes'] button[type=submit]")
            visit.page.wait_for_url(f"**{profile_path}?done=note*")
            assert visit.page.locator("p.flash").text_content() == "Note added."
            assert visit.page.locator(".note").first.text_content().count(f"Spoke to the tutor ({role}).") == 1
        problems = check(visit, f"{role}-tutor-profile")
        assert not problems, "\n".join(problems)

    with open_tab(contexts(role), MOBILE) as visit:
        visit.goto(profile_path)
        visit.page.wait_for_selector("canvas[data-chart-drawn]")
        overflow = horizontal_overflow(visit.page)
        problems = check(visit, f"{role}-tutor-profile-phone")
        assert overflow <= 0, f"{overflow}px wider than the {MOBILE['width']}px screen"
        assert not problems, "\n".join(problems)
