"""The PRD's personas walk their work in Chromium against a server whose queue buttons run Temporal
Updates on real task workflows (tests/browser/live_world.py: a worker subprocess on a Temporal dev server of its own; the
tasks were opened by ingesting two troubled tutors' weeks through the API).

- Marcus (people_ops, PRD persona 2) reviews his role's queue with its SLA countdowns, claims a retention interview,
  documents its outcome and notes, and finds the completed case in the tutor's profile history; the row, the
  workflow's result and the page all agree.
- Sarah (ops_manager, persona 1) reviews Home's Critical alerts (reasons, recommended action) and assigns the
  alert's open task to Marcus in one click; Marcus's own queue then shows it as his.
- Alex (student, persona 4) rates a first session Poor on a phone from the session's feedback link; the worker's
  evaluation on the page's signal flags the tutor's poor first session, which the ops manager sees on the profile.

Every page visited passes check() (axe, console, CSP). Screenshots: test-artifacts/screenshots/persona-*.png.
"""
from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import unquote

import httpx
from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus

from core.db import session_scope
from core.types import utcnow
from domain.feedback import links
from domain.scoring.models import ChurnPrediction
from domain.students.models import Student
from domain.tutors.models import Tutor
from tests.auth import bearer
from tests.browser.live_world import RETENTION_INTERVIEW, TUTOR_NAMES, LiveSite
from tests.browser.live_world import live_contexts, live_site  # noqa: F401 - fixtures of this module
from tests.browser.pages import MOBILE, Visit, check, main_heading, open_tab
from tests.factories import session_payload

if TYPE_CHECKING:  # without playwright installed the module skips (live_world) instead of erroring
    from playwright.sync_api import Page

NOTES = "Talked through her schedule: moving two evening slots to weekends. Check in again in two weeks."
# The queue's countdown for an open task (web.templating.due): the interview's SLA is 48 hours.
COUNTDOWN = re.compile(r"due in (4[0-8] hours|2 days)")


def _checked(visit: Visit, name: str) -> None:
    problems = check(visit, name)
    assert not problems, "\n".join(problems)


def _flash(page: Page) -> str:
    return " ".join((page.locator("p.flash[role=status]").text_content() or "").split())


def test_marcus_claims_and_completes_a_retention_interview(
        live_site: LiveSite, live_contexts: Callable) -> None:  # noqa: F811
    tutor, name = live_site.tutors["marcus"], TUTOR_NAMES["marcus"]
    marcus = live_site.world.users["people_ops"]
    task = live_site.task(tutor, RETENTION_INTERVIEW)
    assert task is not None and task.status == "pending" and task.owner_role == "people_ops"
    iid = task.intervention_id

    with open_tab(live_contexts("people_ops")) as visit:
        page = visit.page
        assert visit.goto("/queue").status == 200
        assert main_heading(page) == "Intervention queue"
        assert "My role (People Ops)" in (page.locator("nav[aria-label='Whose tasks'] [aria-current=page]")
                                          .text_content() or "")
        row = page.locator(f"tr[data-intervention='{iid}']")
        assert row.count() == 1, f"{iid} is not in people ops' queue"
        assert name in (row.locator("td[data-label=Tutor]").text_content() or "")
        assert "Retention interview" in (row.locator("td[data-label=Task]").text_content() or "")
        assert COUNTDOWN.search(row.locator("td[data-label=Due]").text_content() or ""), \
            row.locator("td[data-label=Due]").text_content()
        _checked(visit, "persona-marcus-queue")

        row.get_by_role("button", name=re.compile(r"^Claim\b")).click()
        page.wait_for_url(re.compile(r"/queue\?.*did=claim"))
        assert _flash(page) == f"Claimed: {iid}."
        assert marcus in (row.locator("td[data-label=Owner]").text_content() or "")
        assert "in progress" in (row.locator("td[data-label=Task]").text_content() or "").lower()
        _checked(visit, "persona-marcus-claimed")

        row.get_by_label("Outcome").select_option("improved")
        row.get_by_label("Notes").fill(NOTES)
        row.get_by_role("button", name=re.compile(r"^Complete\b")).click()
        page.wait_for_url(re.compile(r"/queue\?.*did=complete"))
        assert _flash(page) == f"Completed: {iid}."
        assert row.count() == 0  # the default view lists open tasks only
        _checked(visit, "persona-marcus-completed")

    stored = live_site.intervention(iid)
    assert stored is not None
    assert (stored.status, stored.outcome, stored.notes, stored.assigned_to) == ("completed", "improved", NOTES,
                                                                                 marcus)
    status, result = live_site.finished_workflow(iid)
    assert status == WorkflowExecutionStatus.COMPLETED
    assert (result.status, result.outcome, result.notes) == ("completed", "improved", NOTES)

    with open_tab(live_contexts("people_ops")) as visit:
        page = visit.page
        assert visit.goto("/queue?status=all").status == 200
        row = page.locator(f"tr[data-intervention='{iid}']")
        state = " ".join((row.locator("td[data-label=Task]").text_content() or "").lower().split())
        assert "completed: improved" in state, state
        row.get_by_role("link", name=name).click()
        page.wait_for_url(f"**/tutors/{tutor}")
        assert main_heading(page) == f"{name} (#{tutor})"
        case = page.locator(f"li.case[data-intervention='{iid}']")
        assert case.count() == 1, f"{iid} is not in the profile's intervention history"
        shown = " ".join((case.text_content() or "").split())
        assert case.locator(".badge.case-completed").count() == 1
        assert "outcome: improved" in shown.lower() and marcus in shown and NOTES in shown
        _checked(visit, "persona-marcus-profile")


def test_sarah_assigns_a_critical_alert_from_home(live_site: LiveSite, live_contexts: Callable) -> None:  # noqa: F811
    tutor, name = live_site.tutors["sarah"], TUTOR_NAMES["sarah"]
    marcus = live_site.world.users["people_ops"]  # tests.auth.account names the account by its id

    with open_tab(live_contexts("ops_manager")) as visit:
        page = visit.page
        assert visit.goto("/").status == 200
        assert main_heading(page) == "Tutor performance overview"
        critical = page.locator("section[aria-labelledby=critical-heading]")
        alert = critical.locator("li.alert").filter(has=page.locator(f"a[href='/tutors/{tutor}']"))
        assert alert.count() == 1, f"no Critical alert for {name}"
        assert name in (alert.locator(".alert-title").text_content() or "")
        reasons = [" ".join(r.split()) for r in alert.locator("ul.reasons > li").all_text_contents()]
        assert any(r.startswith("Poor first session") for r in reasons), reasons
        assert any(r.startswith("High reschedule") for r in reasons), reasons
        assert "Retention Interview" in (alert.locator("p.action").text_content() or "")

        # One click from the alert: take the task, or hand it to the suggested People Ops teammate.
        assert alert.locator("form[action$='/claim']").get_by_role("button", name="Assign to me").count() == 1
        assert alert.get_by_role("link", name="View profile").get_attribute("href") == f"/tutors/{tutor}"
        assign = alert.locator("form[action$='/assign']")
        assert assign.count() == 1, "no assign form on the alert"
        assert assign.locator("input[type=hidden][name=assignee]").get_attribute("value") == marcus
        action = assign.get_attribute("action") or ""
        iid = unquote(action.removeprefix("/queue/").removesuffix("/assign"))
        task = live_site.intervention(iid)
        assert task is not None and task.tutor_id == tutor and task.kind == "human" and task.status == "pending", \
            (action, task)
        _checked(visit, "persona-sarah-home")

        assign.get_by_role("button", name=f"Assign to {marcus}").click()
        page.wait_for_url(re.compile(r"/\?(.*&)?done="))
        assert page.get_by_role("status").filter(has_text="Assigned").count() >= 1
        _checked(visit, "persona-sarah-assigned")

    stored = live_site.intervention(iid)
    assert stored is not None and (stored.status, stored.assigned_to) == ("in_progress", marcus)

    with open_tab(live_contexts("people_ops")) as visit:
        assert visit.goto("/queue?scope=mine").status == 200
        row = visit.page.locator(f"tr[data-intervention='{iid}']")
        assert row.count() == 1, f"{iid} is not in Marcus's own queue"
        assert marcus in (row.locator("td[data-label=Owner]").text_content() or "")
        assert row.get_by_role("button", name=re.compile(r"^Complete\b")).count() == 1
        _checked(visit, "persona-marcus-assigned-by-sarah")



def _latest_flags(site: LiveSite, tutor: str) -> dict[str, dict]:
    with session_scope(site.engine) as db:
        p = db.execute(select(ChurnPrediction).where(ChurnPrediction.tutor_id == tutor)
                       .order_by(ChurnPrediction.as_of.desc()).limit(1)).scalar_one_or_none()
        return {f["name"]: f for f in (p.flags or [])} if p else {}


def test_alex_rates_a_poor_first_session_and_the_worker_flags_the_tutor(
        live_site: LiveSite, live_contexts: Callable, browser) -> None:  # noqa: ANN001, F811 - playwright's Browser
    """Alex (persona 4) on a phone: one star and "No, I would not work with them again" on a first session. The
    page's signal reaches the tutor's workflow on the worker, whose evaluation raises the poor-first-session flag,
    and the ops manager sees it on the tutor's profile."""
    tag = uuid.uuid4().hex[:6]
    tutor, alex = f"tutor_{tag}_emily", f"student_{tag}_alex"
    now = utcnow()
    with session_scope(live_site.engine) as db:
        db.add(Tutor(tutor_id=tutor, name="Emily Tran", email=f"emily.{tag}@example.test",
                     onboarding_date=(now - timedelta(days=60)).date(), subjects=["Mathematics"]))
        db.add(Student(student_id=alex, name="Alex Rivera", age=16, grade_level="11", subjects_interested=["Mathematics"]))
    first = session_payload(1, tutor=tutor, student=alex, at=now - timedelta(hours=20), student_rating=None)
    with httpx.Client(base_url=live_site.base_url, headers=bearer(live_site.engine, live_site.world.users["service"]),
                      timeout=30) as api:
        r = api.post("/api/v1/sessions", json=[first])
        assert r.status_code == 201 and r.json()["evaluation"] == "signalled", r.text
    assert "poor_first_session" not in _latest_flags(live_site, tutor)

    phone = browser.new_context(base_url=live_site.base_url, viewport=MOBILE, has_touch=True, is_mobile=True)
    try:
        with open_tab(phone) as visit:
            page = visit.page
            assert visit.goto(f"/feedback/{links.sign(first['session_id'])[0]}").status == 200
            assert main_heading(page) == "How was your first session with Emily?"
            page.locator("label[for=rating-1]").tap()  # Poor
            page.get_by_text("No", exact=True).tap()  # would not work with Emily again
            page.get_by_label("Tutor seemed unprepared").tap()
            _checked(visit, "persona-alex-poor-first-session")
            with page.expect_navigation():
                page.get_by_role("button", name="Submit rating").tap()
            assert main_heading(page) == "Thank you for your feedback!"
            _checked(visit, "persona-alex-thanks")
    finally:
        phone.close()

    deadline = time.monotonic() + 60  # the worker evaluates on the page's signal, not on a schedule
    while "poor_first_session" not in (flags := _latest_flags(live_site, tutor)):
        assert time.monotonic() < deadline, f"no poor-first-session flag on {tutor}: {flags}; see {live_site.worker_log}"
        time.sleep(0.5)
    assert flags["poor_first_session"]["evidence"]["session_ids"] == [first["session_id"]]

    with open_tab(live_contexts("ops_manager")) as visit:
        assert visit.goto(f"/tutors/{tutor}").status == 200
        assert "poor first session" in " ".join((visit.page.locator("main").text_content() or "").split()).lower()
        _checked(visit, "persona-alex-tutor-flagged")
