"""The Analytics page in Chromium: each staff role sees it with its heading, Chart.js draws its charts from the
server's data attributes, and axe, the console and the CSP find nothing wrong; at a phone's width nothing scrolls
sideways; the CSV link downloads the figures. Screenshots: test-artifacts/screenshots/<role>-analytics*.png."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from domain.users.models import Role
from tests.browser.pages import MOBILE, Site, check, horizontal_overflow, main_heading, open_tab

STAFF = (Role.ops_manager.value, Role.people_ops.value, Role.admin.value)
DRAWN = "() => window.Chart !== undefined && document.querySelectorAll('canvas[data-chart-drawn]').length"


@pytest.mark.parametrize("role", STAFF)
def test_analytics_page(site: Site, contexts: Callable, role: str) -> None:
    with open_tab(contexts(role)) as visit:
        response = visit.goto("/analytics")
        problems = [] if response.status == 200 else [f"answered {response.status}"]
        if main_heading(visit.page) != "Analytics & reporting":
            problems.append(f"main heading {main_heading(visit.page)!r}")
        visit.page.wait_for_function(DRAWN)  # static/charts.js drew every canvas it was given
        canvases = visit.page.locator("canvas[data-chart-config]").count()
        drawn = visit.page.locator("canvas[data-chart-drawn]").count()
        if not canvases or drawn != canvases:
            problems.append(f"{drawn} of {canvases} charts drawn")
        if visit.page.locator("#heatmap td").count() < 7:
            problems.append("the heatmap has no row of weekdays")
        problems += check(visit, f"{role}-analytics")
        assert not problems, f"/analytics as {role}:\n  " + "\n  ".join(problems)


def test_analytics_on_a_phone_and_csv_download(site: Site, contexts: Callable, tmp_path: Path) -> None:
    with open_tab(contexts(Role.people_ops.value), viewport=MOBILE) as visit:
        visit.goto("/analytics?days=90")
        visit.page.wait_for_function(DRAWN)
        problems = check(visit, "people_ops-analytics-mobile")
        if (overflow := horizontal_overflow(visit.page)) > 0:
            problems.append(f"{overflow}px wider than the {MOBILE['width']}px screen")
        assert not problems, "\n  ".join(problems)

        with visit.page.expect_download() as download_info:
            visit.page.get_by_role("link", name=re.compile(r"^Download CSV")).click()
        download = download_info.value
        assert re.fullmatch(r"tutorpulse-analytics-\d{4}-\d{2}-\d{2}\.csv", download.suggested_filename)
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        text = saved.read_bytes().decode("utf-8")  # bytes: read_text would turn the CRLF line ends into \n
        assert text.startswith("TutorPulse analytics\r\n") and "Period,\"90 days" in text
        assert "Churn heatmap by subject and weekday" in text
