"""Alex (PRD persona 4, 16) rates a session from the link in their email, on a phone: touch, 390 px wide.

A poor first session: tap a star, answer the first-session follow-up, tap Submit, see the thanks; the stored answer
then flags the tutor's poor first session. A later session in exactly two taps. Every page passes check() (axe,
console, CSP), fits the width without sideways scrolling, and keeps its controls at least 44 px square; the stars
work from the keyboard too. Screenshots: test-artifacts/screenshots/feedback-*.png.

The browser site runs without Temporal (conftest), so the page's signal to the tutor's workflow waits; the test runs
that workflow's evaluation itself, in a transaction it rolls back, to see the flag the stored answer raises.
(tests/integration/test_feedback_flow_page.py shows a real worker doing it on the signal.)
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlmodel import Session

from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.evaluation.service import evaluate_tutor
from domain.feedback import links
from domain.feedback.models import StudentFeedback
from domain.scoring.models import ChurnPrediction
from domain.sessions.models import SessionIn
from domain.sessions.service import ingest_sessions
from domain.students.models import Student
from domain.tutors.models import Tutor
from rules.scoring import active_scoring_rules
from tests.browser.pages import ARTIFACTS, MOBILE, Site, Visit, check, horizontal_overflow, main_heading, open_tab
from tests.factories import session_payload

TUTOR, ALEX = "tutor_browser_feedback", "student_browser_alex"
TARGET = 44  # px, WCAG 2.5.5


@pytest.fixture(scope="module")
def sessions(site: Site) -> dict[str, str]:
    """Alex's first session with Emily yesterday, and their second one this morning."""
    now = utcnow()
    first, second = (session_payload(n, tutor=TUTOR, student=ALEX, at=at)
                     for n, at in ((1, now - timedelta(days=1)), (2, now - timedelta(hours=2))))
    with session_scope(site.engine) as db:
        db.add(Tutor(tutor_id=TUTOR, name="Emily Tran", email="emily.tran@example.test",
                     onboarding_date=(now - timedelta(days=30)).date(), subjects=["Mathematics"]))
        db.add(Student(student_id=ALEX, name="Alex Rivera", age=16, grade_level="11", subjects_interested=["Mathematics"]))
        db.flush()
        ingest_sessions(db, [SessionIn.model_validate(first), SessionIn.model_validate(second)], many=True)
    return {"first": first["session_id"], "second": second["session_id"]}


@pytest.fixture(scope="module")
def phone(site: Site, browser) -> Iterator:  # noqa: ANN001 - playwright's Browser
    context = browser.new_context(base_url=site.base_url, viewport=MOBILE, has_touch=True, is_mobile=True)
    context.set_default_timeout(10_000)
    yield context
    context.close()


def _fits(visit: Visit, name: str) -> None:
    problems = check(visit, name)
    assert not problems, "\n".join(problems)
    assert horizontal_overflow(visit.page) == 0, f"{name} scrolls sideways at {MOBILE['width']} px"


def _small_targets(visit: Visit) -> list[str]:
    """Visible star buttons, answer rows, Submit, Skip for now and "Rate it now" smaller than 44 x 44 px."""
    return visit.page.evaluate(f"""() => [...document.querySelectorAll(
        '.star-row label, label.choice, button.submit, a.submit, a.later, details.areas > summary')]
      .filter((e) => e.offsetParent !== null)
      .map((e) => [e.textContent.trim().slice(0, 20), e.getBoundingClientRect()])
      .filter(([, r]) => r.width < {TARGET} || r.height < {TARGET})
      .map(([t, r]) => `${{t}}: ${{Math.round(r.width)}}x${{Math.round(r.height)}}`)""")


def _stored(site: Site, session_id: str) -> StudentFeedback | None:
    with session_scope(site.engine) as db:
        return db.execute(select(StudentFeedback).where(StudentFeedback.session_id == session_id)).scalar_one_or_none()


def test_alex_rates_a_poor_first_session_on_a_phone(site: Site, sessions: dict[str, str], phone) -> None:  # noqa: ANN001
    with open_tab(phone) as visit:
        page = visit.page
        assert visit.goto(f"/feedback/{links.sign(sessions['first'])[0]}").status == 200
        assert main_heading(page) == "How was your first session with Emily?"
        assert "Alex" not in page.content() and "Tran" not in page.content()
        assert page.locator("#improvements").is_hidden()  # asked only after "Probably not" or "No"
        _fits(visit, "feedback-form-first-session")
        assert not _small_targets(visit), _small_targets(visit)

        page.locator("label[for=rating-1]").tap()  # tap 1: one star, Poor
        assert page.locator("#rating-1").is_checked()
        assert page.locator("#text-label").inner_text() == "What could have been better? (optional)"
        page.get_by_text("No", exact=True).tap()  # the follow-up: would not work with Emily again ...
        assert page.locator("#improvements").is_visible()
        page.get_by_label("Tutor was late").tap()  # ... because of what happened
        page.locator("#text").fill("Started 15 minutes late")
        assert page.locator("#text-count").inner_text() == "23 / 500 characters"
        _fits(visit, "feedback-form-poor-first-session")

        with page.expect_navigation() as nav:
            page.get_by_role("button", name="Submit rating").tap()  # tap 2
        assert nav.value is not None and nav.value.status == 200
        assert main_heading(page) == "Thank you for your feedback!"
        assert "sorry your first session with Emily" in page.content()
        _fits(visit, "feedback-thanks-poor-first-session")

        assert visit.goto(page.url).status == 409  # the link takes one answer
        assert main_heading(page) == "You have already rated this session"
        _fits(visit, "feedback-already-rated")

    stored = _stored(site, sessions["first"])
    assert stored is not None and (stored.overall_rating, stored.is_first_session, stored.would_recommend) == (1, True, False)
    assert stored.improvement_areas == ["Tutor was late"] and stored.free_text_feedback == "Started 15 minutes late"
    # What the tutor's workflow runs on the page's signal, rolled back so the shared site keeps its state.
    with Session(site.engine) as db:
        evaluate_tutor(db, TUTOR, as_of=utcnow(), rules=active_scoring_rules(Settings().rules_dir))
        prediction = db.execute(select(ChurnPrediction).where(ChurnPrediction.tutor_id == TUTOR)).scalar_one()
        flags = {f["name"]: f for f in prediction.flags}
        db.rollback()
    assert "poor_first_session" in flags and flags["poor_first_session"]["evidence"]["session_ids"] == [sessions["first"]]


def test_a_rating_is_two_taps_and_works_from_the_keyboard(site: Site, sessions: dict[str, str], phone) -> None:  # noqa: ANN001
    with open_tab(phone) as visit:
        page = visit.page
        visit.goto(f"/feedback/{links.sign(sessions['second'])[0]}")
        assert main_heading(page) == "How was your session with Emily?"
        assert page.locator("input[name=work_again]").count() == 0  # not a first session
        with page.expect_navigation():
            page.get_by_role("link", name="Skip for now").tap()  # later: nothing stored, the link still works
        assert main_heading(page) == "No problem"
        _fits(visit, "feedback-skipped")
        assert not _small_targets(visit), _small_targets(visit)
        with page.expect_navigation():
            page.get_by_role("link", name="Rate it now").tap()
        assert main_heading(page) == "How was your session with Emily?" and _stored(site, sessions["second"]) is None
        page.locator("#rating-3").focus()
        page.keyboard.press("ArrowRight")  # a radio group: arrows move the choice
        assert page.locator("#rating-4").is_checked()
        outline = page.locator("label[for=rating-4]").evaluate("e => getComputedStyle(e).outlineStyle")
        assert outline != "none", "the focused star shows no focus ring"

        page.get_by_text("Rate specific areas (optional)").tap()  # opened, the five areas still fit the phone
        assert page.locator("label[for=patience-5]").is_visible() and horizontal_overflow(page) == 0
        assert not _small_targets(visit), _small_targets(visit)
        page.screenshot(path=ARTIFACTS / "screenshots" / "feedback-form-areas-open.png", full_page=True)

        page.locator("label[for=rating-5]").tap()
        with page.expect_navigation():
            page.get_by_role("button", name="Submit rating").tap()
        assert main_heading(page) == "Thank you for your feedback!"
    stored = _stored(site, sessions["second"])
    assert stored is not None and stored.overall_rating == 5 and stored.improvement_areas == []
