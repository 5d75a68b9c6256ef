"""The browser tests' world: a real uvicorn server of the app on a seeded SQLite database, Debian's chromium driven
by Playwright, and one browser context per role holding a real page session (test_pages_a11y.test_sign_in walks
the /login form itself).

Temporal is unreachable on purpose (tests/integration/access_world.world_settings): pages read the database only,
and an action that needs a workflow shows its 503 page. What cannot run here (no chromium, no Playwright, no npm
assets) skips with the reason, never fails: `make test` installs all three where it can.
"""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from api.actor import SESSION_COOKIE
from api.main import WEB_STATIC, create_app
from core.db import get_engine, session_scope
from core.migrate import upgrade
from core.types import utcnow
from domain.scoring.models import ChurnPrediction, RiskLevel
from domain.tutors.models import Tutor
from tests.auth import page_session
from core.serving import serving
from tests.browser.pages import ANONYMOUS, AXE_JS, Site
from tests.factories import intervention_row
from tests.integration.access_world import TUTOR_A, seed_world, world_settings

CHROMIUM = Path("/usr/bin/chromium")
# --headless: no display here; --no-sandbox: root in a container has no user namespaces for the sandbox;
# --disable-background-networking: the browser must not call home (the machines are offline anyway).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TUTOR_CRITICAL = "tutor_browser_critical"


def _cannot_run() -> str | None:
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} missing: `make test` installs Debian's chromium (apt-get install -y chromium, as root)"
    if not AXE_JS.exists():
        return f"{AXE_JS} missing: `make install` runs npm ci (it needs npm)"
    if not (WEB_STATIC / "vendor" / "htmx.min.js").exists():
        return "web/static/vendor/htmx.min.js missing: `make install` copies it from node_modules (it needs npm)"
    return None


def _seed_more(engine: Engine) -> None:
    """Beyond the access world: a Critical tutor with reasons, an overdue escalated task and one awaiting approval
    in people ops' queue, and a program in progress, so Home's alerts and the queue's badges and forms are shown."""
    now = utcnow().replace(microsecond=0)
    with session_scope(engine) as db:
        db.add(Tutor(tutor_id=TUTOR_CRITICAL, name="Casey Critical", email="casey@example.test",
                     onboarding_date=(now - timedelta(days=40)).date(), subjects=["Physics"],
                     baseline_sessions_per_week=10))
        db.flush()
        db.add(ChurnPrediction(tutor_id=TUTOR_CRITICAL, prediction_date=now.date(), as_of=now, churn_score=88.0,
                               risk_level=RiskLevel.critical, model_version="browser-test",
                               flags=[{"name": "rating_drop", "summary": "average rating fell from 4.7 to 3.9"}],
                               contributing_factors={"reschedule_rate": {"score": 90, "contribution": 27.0}}))
        db.add(intervention_row("iv-browser-overdue", TUTOR_CRITICAL, "retention_interview",
                                recommended=now - timedelta(days=3), owner_role="people_ops",
                                risk_level="Critical", churn_score=88.0, due_date=now - timedelta(hours=5),
                                escalated_at=now - timedelta(hours=4), escalated_to_role="ops_manager"))
        db.add(intervention_row("iv-browser-approval", TUTOR_CRITICAL, "performance_warning",
                                recommended=now - timedelta(hours=6), owner_role="people_ops", status="needs_approval",
                                requires_approval=True, due_date=now + timedelta(days=1), risk_level="Critical"))
        db.add(intervention_row("iv-browser-program", TUTOR_A, "performance_program", kind="program",
                                recommended=now - timedelta(days=10), owner_role="people_ops", status="in_progress",
                                due_date=now + timedelta(days=20), risk_level="High", churn_score=71.0))


def skip_unless_runnable() -> None:
    reason = _cannot_run() if importlib.util.find_spec("playwright") else \
        "the playwright package is missing: `make test` installs the test extras"
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    skip_unless_runnable()
    db_url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'tutorpulse.db'}"
    upgrade(db_url)
    settings = world_settings(db_url)
    engine = get_engine(db_url)
    world = seed_world(engine, settings)
    _seed_more(engine)

    try:
        with serving(create_app(settings), name="browser-test-server") as base_url:
            yield Site(base_url=base_url, engine=engine, world=world)
    finally:
        engine.dispose()


@pytest.fixture(scope="package")
def browser() -> Iterator:
    """One Chromium for every browser test: Playwright's sync API allows one instance per thread."""
    skip_unless_runnable()
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only once it is known to be installed

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def signed_in_contexts(browser, site: Site, *, timeout_ms: int = 10_000) -> Iterator[Callable]:  # noqa: ANN001
    """A function of a role giving its browser context on ``site``, created and signed in on first use (anonymous:
    never); every context is closed afterwards."""
    opened: dict = {}

    def get(role: str):  # noqa: ANN202
        if role not in opened:
            context = browser.new_context(base_url=site.base_url)
            context.set_default_timeout(timeout_ms)
            if role != ANONYMOUS:
                # A real page session, as POST /login issues (test_sign_in walks the form itself; an argon2 check
                # per role here would cost seconds).
                token, _csrf = page_session(site.engine, site.world.users[role])
                context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": site.base_url,
                                      "httpOnly": True, "sameSite": "Lax"}])
            opened[role] = context
        return opened[role]

    try:
        yield get
    finally:
        for context in opened.values():
            context.close()


@pytest.fixture(scope="package")
def contexts(site: Site, browser) -> Iterator[Callable]:  # noqa: ANN001 - playwright's Browser
    """signed_in_contexts on the package's site."""
    with signed_in_contexts(browser, site) as get:
        yield get
