"""Every page, as each role allowed on it, in Chromium: it answers the expected status with its main heading, loads
with no console error, no failed or 4xx/5xx sub-request and no CSP violation, and axe-core finds no serious or
critical violation. Screenshots land in test-artifacts/screenshots/<role>-<page>.png, axe's full reports in
test-artifacts/axe/. The sign-in and account pages, the queue and the admin pages are walked again at a phone's
width (390 x 844).

The page table is the list of pages that exist; a new page adds a row here (the access matrix,
tests/integration/test_access_matrix.py, is what fails when a route has no Policy).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from api.actor import SESSION_COOKIE
from domain.users.models import Role
from tests.auth import PASSWORD
from tests.browser.pages import ANONYMOUS, MOBILE, Site, Visit, check, horizontal_overflow, main_heading, open_tab
from tests.integration.access_world import RULESET

STAFF = (Role.ops_manager.value, Role.people_ops.value, Role.admin.value)
ADMIN = (Role.admin.value,)
EVERY_ROLE = tuple(r.value for r in Role)


@dataclass(frozen=True)
class PageCase:
    name: str
    path: str  # {version}: the seeded active version of the rule set
    roles: tuple[str, ...]
    heading: str  # a regular expression the whole <h1> text must match
    status: int = 200


PAGES = (
    PageCase("home", "/", STAFF, r"Tutor performance overview"),
    PageCase("queue", "/queue", STAFF, r"Intervention queue"),
    PageCase("queue-all", "/queue?scope=all&status=all", (Role.ops_manager.value, Role.admin.value),
             r"Intervention queue"),
    PageCase("queue-scope-refused", "/queue?scope=all", (Role.people_ops.value,), r"Intervention queue", 403),
    PageCase("rules", "/rules", ADMIN, r"Rule sets"),
    PageCase("ruleset", f"/rules/{RULESET}", ADMIN, rf"Rule set {RULESET}"),
    PageCase("rule-version", f"/rules/{RULESET}/versions/{{version}}", ADMIN, rf"{RULESET}.*v\d+.*active"),
    PageCase("rules-not-found", "/rules/no_such_ruleset", ADMIN, r"Not found", 404),
    PageCase("users", "/admin/users", ADMIN, r"Accounts"),
    PageCase("audit", "/admin/audit", ADMIN, r"Audit log"),
    PageCase("audit-invalid", "/admin/audit?since=yesterday", ADMIN, r"Audit log", 422),
    PageCase("account", "/account", EVERY_ROLE, r"Your account"),
    PageCase("login", "/login", (ANONYMOUS,), r"Sign in"),
    # The error page is one template whoever meets it: one refused role of each kind and one 404 are enough.
    PageCase("error-403", "/queue", (Role.tutor.value, Role.service.value), r"Not allowed", 403),
    PageCase("error-404", "/no/such/page", (Role.ops_manager.value,), r"Not found", 404),
)
CASES = [pytest.param(case, role, id=f"{role}-{case.name}") for case in PAGES for role in case.roles]


def _verify(visit: Visit, name: str, *, heading: str, status: int, got_status: int, phone: bool = False) -> None:
    problems = [] if got_status == status else [f"answered {got_status}, expected {status}"]
    if phone and (overflow := horizontal_overflow(visit.page)) > 0:
        problems.append(f"{overflow}px wider than the {MOBILE['width']}px screen (it scrolls sideways)")
    shown = main_heading(visit.page)
    if not re.fullmatch(heading, shown):
        problems.append(f"main heading {shown!r} does not match {heading!r}")
    problems += check(visit, name)
    assert not problems, f"{name} ({visit.page.url}):\n  " + "\n  ".join(problems)


@pytest.mark.parametrize(("case", "role"), CASES)
def test_page(site: Site, contexts: Callable, case: PageCase, role: str) -> None:
    with open_tab(contexts(role)) as visit:
        response = visit.goto(case.path.format(version=site.world.path_values["version"]))
        _verify(visit, f"{role}-{case.name}", heading=case.heading, status=case.status, got_status=response.status)


PHONE = (
    (ANONYMOUS, "login", "/login", r"Sign in"),
    # The people on phones; the admin pages below carry the header with the most links.
    *((role, "account", "/account", r"Your account") for role in (Role.tutor.value, Role.student.value)),
    (Role.people_ops.value, "queue", "/queue", r"Intervention queue"),
    *((ADMIN[0], c.name, c.path, c.heading) for c in PAGES if c.name in ("rules", "ruleset", "rule-version", "users",
                                                                         "audit")),
)


@pytest.mark.parametrize(("role", "name", "path", "heading"), [pytest.param(*p, id=f"{p[0]}-{p[1]}") for p in PHONE])
def test_phone_width(site: Site, contexts: Callable, role: str, name: str, path: str, heading: str) -> None:
    """The same checks at 390 x 844, and nothing wider than the screen (wide tables scroll in their own region)."""
    with open_tab(contexts(role), viewport=MOBILE) as visit:
        response = visit.goto(path.format(version=site.world.path_values["version"]))
        _verify(visit, f"{role}-{name}-mobile", heading=heading, status=200, got_status=response.status, phone=True)


# --- page states reached through a form ----------------------------------------------------------------------

def _after_submit(visit: Visit, button: str) -> int:
    # Row buttons carry hidden context for screen readers ("Claim: Coaching Session for Tutor 1").
    name = re.compile(rf"^{re.escape(button)}\b")
    with visit.page.expect_navigation() as nav:
        visit.page.get_by_role("button", name=name).first.click()
    response = nav.value
    assert response is not None
    return response.status


def test_sign_in(site: Site, browser) -> None:  # noqa: ANN001 - playwright's Browser
    """The real form, in a fresh context: an ops manager lands on Home, signed in, with the session cookie set."""
    context = browser.new_context(base_url=site.base_url)
    try:
        visit = open_tab(context)
        visit.goto("/login")
        visit.page.get_by_label("Email").fill(site.user_email(Role.ops_manager.value))
        visit.page.get_by_label("Password").fill(PASSWORD)
        status = _after_submit(visit, "Sign in")
        assert visit.page.url == f"{site.base_url}/", visit.page.url
        assert visit.page.locator("#signed-in-name").text_content() == site.world.users[Role.ops_manager.value]
        assert any(c["name"] == SESSION_COOKIE for c in context.cookies())
        _verify(visit, "ops_manager-home-after-sign-in", heading=r"Tutor performance overview", status=200,
                got_status=status)
    finally:
        context.close()


def test_login_refused(site: Site, contexts: Callable) -> None:
    with open_tab(contexts(ANONYMOUS)) as visit:
        visit.goto("/login")
        visit.page.get_by_label("Email").fill(site.user_email(Role.ops_manager.value))
        visit.page.get_by_label("Password").fill(PASSWORD + " but wrong")
        status = _after_submit(visit, "Sign in")
        assert visit.page.get_by_role("alert").inner_text().startswith("That email and password do not match")
        _verify(visit, "anonymous-login-refused", heading=r"Sign in", status=401, got_status=status)


def test_rules_draft_problems(contexts: Callable) -> None:
    """The editor's validation messages: an unparsable draft comes back with its problems, the field marked."""
    with open_tab(contexts(Role.admin.value)) as visit:
        visit.goto(f"/rules/{RULESET}")
        visit.page.get_by_label("Rule set (YAML)").fill("rules: [")
        status = _after_submit(visit, "Validate and save draft")
        assert visit.page.locator("#problems").is_visible()
        assert visit.page.get_by_label("Rule set (YAML)").get_attribute("aria-invalid") == "true"
        _verify(visit, "admin-rules-draft-problems", heading=rf"Rule set {RULESET}", status=422, got_status=status)


def test_rules_dry_run(contexts: Callable) -> None:
    with open_tab(contexts(Role.admin.value)) as visit:
        visit.goto(f"/rules/{RULESET}")
        status = _after_submit(visit, "Dry run against today's tutors")
        assert visit.page.locator("#dry-run").is_visible()
        _verify(visit, "admin-rules-dry-run", heading=rf"Rule set {RULESET}", status=200, got_status=status)


def test_users_create_refused(contexts: Callable) -> None:
    """Field errors on the account form: each marked invalid and described by its message."""
    with open_tab(contexts(Role.admin.value)) as visit:
        visit.goto("/admin/users")
        page = visit.page
        page.get_by_label("Email", exact=True).fill("new.person@example.test")
        page.get_by_label("Name", exact=True).fill("New Person")
        page.locator("#c-password").fill("short")
        status = _after_submit(visit, "Create account")
        assert page.locator("#c-password").get_attribute("aria-invalid") == "true"
        _verify(visit, "admin-users-create-refused", heading=r"Accounts", status=422, got_status=status)


def test_queue_action_without_temporal(contexts: Callable) -> None:
    """A queue button while Temporal is down: the row says so (503) instead of the page failing."""
    with open_tab(contexts(Role.people_ops.value)) as visit:
        visit.goto("/queue")
        status = _after_submit(visit, "Claim")
        assert "Temporal is unreachable" in visit.page.locator("#task-1 [role=alert]").inner_text()
        # The assign, extend and cancel forms fold away in <details>: opened, so axe reads them too.
        visit.page.evaluate("document.querySelectorAll('main details').forEach((d) => { d.open = true; })")
        _verify(visit, "people_ops-queue-temporal-down", heading=r"Intervention queue", status=503, got_status=status)


# --- keyboard ------------------------------------------------------------------------------------------------

FOCUS_RING = """() => { const e = document.activeElement, s = getComputedStyle(e);
    return {what: e.tagName + (e.id ? '#' + e.id : '') + ' ' + (e.innerText || e.name || '').trim().slice(0, 30),
            ring: (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== 'none'}; }"""


def _unringed_stops(page, stops: int) -> list[str]:  # noqa: ANN001 - playwright's Page
    """The tab stops, from the focused one on, that show no focus indicator (a 2px+ outline or a shadow)."""
    unseen = []
    for _ in range(stops):
        focused = page.evaluate(FOCUS_RING)
        if not focused["ring"]:
            unseen.append(focused["what"])
        page.keyboard.press("Tab")
    return unseen


def test_keyboard_skip_link_and_focus(contexts: Callable) -> None:
    """From the top of a page, Tab reaches the skip link first, in view; every stop after it shows a focus ring
    (the header's links and button on the dark bar included)."""
    with open_tab(contexts(Role.admin.value)) as visit:
        visit.goto("/admin/users")
        page = visit.page
        page.keyboard.press("Tab")
        skip = page.locator("a.skip")
        assert skip.evaluate("e => e === document.activeElement"), "the first Tab stop is not the skip link"
        box = skip.bounding_box()
        assert box and box["x"] >= 0 and box["y"] >= 0, f"the focused skip link is off screen: {box}"
        unseen = _unringed_stops(page, 14)
        assert not unseen, f"no visible focus indicator on {unseen}"


def test_keyboard_login(contexts: Callable) -> None:
    """The sign-in form starts focused on the email field; its fields and button show a focus ring."""
    with open_tab(contexts(ANONYMOUS)) as visit:
        visit.goto("/login")
        page = visit.page
        assert page.evaluate("document.activeElement.id") == "email"
        unseen = _unringed_stops(page, 3)
        assert not unseen, f"no visible focus indicator on {unseen}"


# --- the harness itself ---------------------------------------------------------------------------------------

def test_checks_catch_what_they_look_for(contexts: Callable) -> None:
    """A clean page made wrong on purpose: check() must report the unlabelled field (axe, critical), the inline
    style the CSP refuses and the missing script, or a green run of this file would mean nothing."""
    with open_tab(contexts(ANONYMOUS)) as visit:
        visit.goto("/login")
        visit.page.evaluate("""() => {
            document.querySelector('label[for=email]').remove();
            const style = document.createElement('style'); style.textContent = 'body { color: red; }';
            document.head.appendChild(style);
            const script = document.createElement('script'); script.src = '/static/vendor/no-such.js';
            document.head.appendChild(script);
        }""")
        visit.page.wait_for_load_state("networkidle")
        found = "\n".join(check(visit, "harness-self-test"))
        assert "axe critical label" in found, found
        assert "CSP violation: style-src-elem blocked inline" in found, found
        assert "/static/vendor/no-such.js answered 404" in found, found
