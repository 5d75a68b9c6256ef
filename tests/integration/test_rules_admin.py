"""Rule administration on SQLite and PostgreSQL: validation that names rule and field, publish / rollback / shadow
history with diffs and authors, the dry run of a threshold edit, shadow records, the JSON API and the pages.

The rule set under test is built from the shipped file's inputs and intervention catalogue with one rule of our
own (A1 at a churn threshold), so the lead's edits to the shipped rules do not move these expectations.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from api.main import create_app
from core.config import Settings
from core.db import session_scope
from domain.audit.models import AuditLog
from domain.interventions.models import Intervention
from domain.interventions.planning import population_facts, preview_population
from domain.rulesets import service
from domain.rulesets.content import problems_of
from domain.rulesets.dryrun import dry_run
from domain.rulesets.models import RuleVersion, ShadowDecision
from domain.scoring.models import ChurnPrediction
from rules.loader import RulesError
from tests.auth import as_role
from tests.integration.web_auth import make_user, sign_in
from tests.factories import NOW, seed_people

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = yaml.safe_load((ROOT / "rules" / "interventions.yaml").read_text(encoding="utf-8"))
RS = "tutor_interventions"
A1 = "A1_coaching_tips"
# tutor -> churn score. Active rule: A1 at >= 70; the edit lowers it to 60, so only tutor_2 (65) gains one.
# tutor_5 (62) has an open A1 case: the active version would cancel it (no longer matched), the edit keeps it.
SCORES = {"tutor_1": 50, "tutor_2": 65, "tutor_3": 75, "tutor_4": 85, "tutor_5": 62}


def rules_text(threshold: int = 70, *, expect_at: int | None = None) -> str:
    """A complete rule set; ``expect_at`` moves the golden test's positive example (to make it fail)."""
    catalogue = {k: copy.deepcopy(SHIPPED[k]) for k in ("inputs", "interventions", "effectiveness") if k in SHIPPED}
    catalogue["interventions"][A1]["cancel_if_unmatched"] = True
    hit = expect_at if expect_at is not None else threshold + 1
    return (
        "# Test rule set: one threshold drives A1.\n"
        f"ruleset: {RS}\n"
        "version: 1   # stamped on publish\n"
        "status: active\n"
        "owner: people-ops\n"
        f'changelog: "A1 from churn {threshold}"\n'
        + yaml.safe_dump(catalogue, sort_keys=False)
        + "rules:\n"
          "  - id: a1_high_churn\n"
          "    priority: 3\n"
          "    mode: fact\n"
          "    when:\n"
          f"      - {{field: churn_score, op: gte, value: {threshold}}}   # the threshold under test\n"
          f"    then: [{A1}]\n"
          "    tests:\n"
          f"      - given: {{churn_score: {hit}}}\n"
          f"        expect: [{A1}]\n"
          f"      - given: {{churn_score: {threshold - 1}}}\n"
          "        expect: []\n"
    )


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    path = tmp_path / "rules"
    path.mkdir()
    (path / "interventions.yaml").write_text(rules_text(70), encoding="utf-8")
    return path


@pytest.fixture
def population(engine: Engine) -> list[str]:
    ids = seed_people(engine, tutors=len(SCORES))
    with session_scope(engine) as db:
        for tutor_id, score in SCORES.items():
            level = "Critical" if score > 75 else "High" if score > 60 else "Medium"
            db.add(ChurnPrediction(tutor_id=tutor_id, prediction_date=NOW.date(), as_of=NOW, churn_score=score,
                                   risk_level=level, model_version="test", facts={"churn_score": score, "risk_level": level}))
        db.add(Intervention(intervention_id="intervention-tutor_5-A1-open", tutor_id="tutor_5", intervention_type=A1,
                            kind="automated", trigger_reason="earlier", recommended_date=NOW - timedelta(days=10),
                            status="pending", rules_version=f"{RS}@v1", rules_hash="h"))
    return ids


def _versions(engine: Engine) -> list[tuple]:
    with session_scope(engine) as db:
        return [(r.version, r.status, r.author, r.hash) for r in db.execute(
            select(RuleVersion).order_by(RuleVersion.rule_version_id)).scalars()]


# --- service ------------------------------------------------------------------------------------------------------

def test_shipped_rule_set_seeds_once_as_the_active_version(engine: Engine, settings: Settings) -> None:
    with session_scope(engine) as db:
        rules = service.active_rules(db, settings.rules_dir)
        assert rules.version_label == f"{RS}@v{SHIPPED['version']}"
        assert service.active_rules(db, settings.rules_dir) is rules  # compiled once, cached by hash
        [row] = service.list_versions(db, RS)
    assert (row.status, row.author, row.diff, row.hash) == ("active", "seed", "", rules.hash)
    assert row.content == (settings.rules_dir / "interventions.yaml").read_text(encoding="utf-8")


def test_invalid_rule_sets_are_refused_naming_rule_and_field_and_write_nothing(engine: Engine, rules_dir: Path) -> None:
    with session_scope(engine) as db:
        service.seed(db, rules_dir=rules_dir)
    before = _versions(engine)
    cases = [  # (field at fault, the text, what the reported line holds)
        ("rules.0.when.0.value", rules_text(70).replace("value: 70}", "value: high}"), "value: high"),
        ("rules.0.then.0", rules_text(70).replace(f"then: [{A1}]", "then: [Z9_unknown]"), "then: [Z9_unknown]"),
        ("rules.0.tests.0.expect", rules_text(70, expect_at=65), f"expect: [{A1}]"),  # golden test: 65 is below 70
    ]
    for field, text, marker in cases:
        with pytest.raises(RulesError) as refused, session_scope(engine) as db:
            service.save_draft(db, RS, content=text, author="ann", now=NOW)
        [problem] = problems_of(refused.value)
        assert (problem.file, problem.rule, problem.field) == (f"{RS}@draft", "a1_high_churn", field), problem.text
        assert marker in text.splitlines()[problem.line - 1], problem.text
    assert _versions(engine) == before  # no draft row, nothing retired

    # A stored draft is validated again on publish (the code may have moved since it was saved).
    with session_scope(engine) as db:
        service.save_draft(db, RS, content=rules_text(60), author="ann", now=NOW)
    with session_scope(engine) as db:
        db.execute(update(RuleVersion).where(RuleVersion.status == "draft").values(
            content=rules_text(60).replace("op: gte", "op: gtx")))
    with pytest.raises(RulesError) as refused, session_scope(engine) as db:
        service.publish(db, RS, author="ann", now=NOW)
    [problem] = problems_of(refused.value)
    assert (problem.file, problem.rule, problem.field) == (f"{RS}@v2", "a1_high_churn", "rules.0.when.0.op")
    after = _versions(engine)
    assert [(v, s) for v, s, *_ in after] == [(1, "active"), (None, "draft")]
    with session_scope(engine) as db:
        assert db.execute(select(func.count()).select_from(AuditLog)).scalar_one() == 0


def test_publish_rollback_and_shadow_keep_an_append_only_history(engine: Engine, rules_dir: Path) -> None:
    def at(minutes: int):  # noqa: ANN202
        return NOW + timedelta(minutes=minutes)

    with session_scope(engine) as db:
        v1 = service.active_rules(db, rules_dir)
        assert A1 not in v1.evaluate({"churn_score": 65})[1]
        service.save_draft(db, RS, content=rules_text(60), author="ann", now=at(1))
    with session_scope(engine) as db:
        v2 = service.publish(db, RS, author="ann", now=at(2))
    assert (v2.version, v2.status, v2.author, v2.published_at, v2.based_on_version) == (2, "active", "ann", at(2), 1)
    assert "version: 2   # stamped on publish\n" in v2.content and "\nstatus: active\n" in v2.content
    assert v2.content.startswith("# Test rule set")  # the admin's comments survive the stamp
    assert "-      - {field: churn_score, op: gte, value: 70}" in v2.diff
    assert "+      - {field: churn_score, op: gte, value: 60}" in v2.diff
    assert v2.diff.startswith(f"--- {RS}@v1\n+++ {RS}@v2\n")
    with session_scope(engine) as db:
        live = service.active_rules(db, rules_dir)  # the same process sees the publish at once
        assert live.version_label == f"{RS}@v2" and A1 in live.evaluate({"churn_score": 65})[1]

    with session_scope(engine) as db:
        v3 = service.rollback(db, RS, 1, author="bob", now=at(3))
    assert (v3.version, v3.status, v3.author, v3.based_on_version) == (3, "active", "bob", 1)
    assert v3.changelog.startswith("Rollback to v1")
    with session_scope(engine) as db:
        original = service.get_version(db, RS, 1).content
        assert v3.content == original.replace("version: 1 ", "version: 3 ")
        assert "+      - {field: churn_score, op: gte, value: 70}" in v3.diff
        assert A1 not in service.active_rules(db, rules_dir).evaluate({"churn_score": 65})[1]

        shadow = service.set_shadow(db, RS, 2, author="carol", now=at(4))
        assert shadow.status == "shadow" and service.shadow_rules(db).version_label == f"{RS}@v2"
        for refused in (lambda: service.set_shadow(db, RS, 3, author="x", now=at(5)),
                        lambda: service.rollback(db, RS, 3, author="x", now=at(5))):
            with pytest.raises(service.RulesetConflict):
                refused()
        with pytest.raises(service.RulesetNotFound):
            service.get_version(db, RS, 9)

        # Publishing as shadow replaces the shadow; rolling back to the shadow promotes it and ends the shadow run.
        service.save_draft(db, RS, content=rules_text(50), author="dan", now=at(6))
        v4 = service.publish(db, RS, author="dan", now=at(7), status=service.VersionStatus.shadow)
        assert (v4.version, v4.status) == (4, "shadow") and service.get_version(db, RS, 2).status == "retired"
        assert service.active_rules(db, rules_dir).version_label == f"{RS}@v3"
        v5 = service.rollback(db, RS, 4, author="dan", now=at(8))
        assert v5.changelog.startswith("Promoted shadow v4") and service.shadow_rules(db) is None

        # A draft saved before someone else published is refused until it is saved (rebased) again.
        service.save_draft(db, RS, content=rules_text(55), author="eve", now=at(9))
        service.rollback(db, RS, 1, author="bob", now=at(10))
        with pytest.raises(service.RulesetConflict, match="based on v5 but v6 is active"):
            service.publish(db, RS, author="eve", now=at(11))
        with pytest.raises(service.RulesetNotFound):
            service.clear_shadow(db, RS, author="eve", now=at(11))

    history = _versions(engine)
    assert [(v, s, a) for v, s, a, _ in history] == [
        (1, "retired", "seed"), (2, "retired", "ann"), (3, "retired", "bob"), (4, "retired", "dan"),
        (5, "retired", "dan"), (None, "draft", "eve"), (6, "active", "bob")]
    # Two admins racing: the database itself refuses a second active version (and a second draft).
    for status in ("active", "draft"):
        with pytest.raises(IntegrityError), session_scope(engine) as db:
            db.add(RuleVersion(ruleset=RS, version=None if status == "draft" else 99, status=status, content="x",
                               hash="h", author="racer"))
            db.flush()
    with session_scope(engine) as db:
        events = db.execute(select(AuditLog.actor, AuditLog.resource_id, AuditLog.details).order_by(AuditLog.audit_id)).all()
    assert [(a, r, d["event"]) for a, r, d in events] == [
        ("ann", f"{RS}@v2", "publish_active"), ("bob", f"{RS}@v3", "rollback"), ("carol", f"{RS}@v2", "shadow"),
        ("dan", f"{RS}@v4", "publish_shadow"), ("dan", f"{RS}@v5", "rollback"), ("bob", f"{RS}@v6", "rollback")]


def test_dry_run_shows_what_a_threshold_edit_would_change(engine: Engine, rules_dir: Path, population: list[str]) -> None:
    with session_scope(engine) as db:
        same = dry_run(db, rules_text(70), as_of=NOW, rules_dir=rules_dir)
        edited = dry_run(db, rules_text(60), as_of=NOW, rules_dir=rules_dir)
    assert same.identical and same.tutors == len(SCORES)
    [a1] = [t for t in same.types if t.intervention_type == A1]
    assert (a1.active, a1.draft, a1.cancel_active, a1.cancel_draft) == (2, 2, 1, 1)

    [a1] = [t for t in edited.types if t.intervention_type == A1]
    assert (a1.active, a1.draft, a1.added, a1.removed, a1.cancel_active, a1.cancel_draft) == (2, 3, 1, 0, 1, 0)
    changes = {c.tutor_id: c for c in edited.changes}
    assert set(changes) == {"tutor_2", "tutor_5"}
    assert changes["tutor_2"].created_only_by_draft == [A1] and changes["tutor_2"].name == "Tutor 2"
    assert [(x.intervention_id, x.intervention_type) for x in changes["tutor_5"].cancelled_only_by_active] == [
        ("intervention-tutor_5-A1-open", A1)]
    assert edited.active_label == f"{RS}@v1" and edited.seconds < 5

    with pytest.raises(RulesError), session_scope(engine) as db:
        dry_run(db, rules_text(70).replace("value: 70}", "value: high}"), as_of=NOW, rules_dir=rules_dir)


def test_shadow_records_what_it_would_have_done_once(engine: Engine, rules_dir: Path, population: list[str]) -> None:
    with session_scope(engine) as db:
        active = service.active_rules(db, rules_dir)
        service.save_draft(db, RS, content=rules_text(60), author="ann", now=NOW)
        service.publish(db, RS, author="ann", now=NOW, status=service.VersionStatus.shadow)
        shadow = service.shadow_rules(db)
        facts = population_facts(db, as_of=NOW)
        by_active = preview_population(db, active, as_of=NOW, facts=facts)
        by_shadow = preview_population(db, shadow, as_of=NOW, facts=facts)
        for tutor_id in SCORES:
            service.record_shadow(db, tutor_id, NOW, by_active[tutor_id], by_shadow[tutor_id])
        again = service.record_shadow(db, "tutor_2", NOW, by_active["tutor_2"], by_shadow["tutor_2"])
    with session_scope(engine) as db:
        rows = {r.tutor_id: r for r in db.execute(select(ShadowDecision)).scalars()}
        summary = service.shadow_summary(db, RS, 2)
    assert len(rows) == len(SCORES) and again.shadow_decision_id == rows["tutor_2"].shadow_decision_id
    assert (rows["tutor_2"].would_create, rows["tutor_2"].active_create, rows["tutor_2"].differs) == ([A1], [], True)
    assert (rows["tutor_5"].would_cancel, rows["tutor_5"].active_cancel) == ([], ["intervention-tutor_5-A1-open"])
    assert (rows["tutor_3"].differs, rows["tutor_3"].shadow_version, rows["tutor_3"].active_version) == (False, 2, 1)
    assert (summary.decisions, summary.differing, summary.only_shadow, summary.only_active) == (5, 2, {A1: 1}, {})
    assert [r.tutor_id for r in summary.recent] and {r.tutor_id for r in summary.recent} == {"tutor_2", "tutor_5"}


# --- API and pages ----------------------------------------------------------------------------------------------

@pytest.fixture
def client(db_url: str, rules_dir: Path, population: list[str]) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=db_url, rules_dir=rules_dir, temporal_address="127.0.0.1:1"))
    with TestClient(app, base_url="https://testserver") as c:
        c.headers.update(as_role(app.state.engine, "admin"))
        yield c


def test_rules_api(client: TestClient) -> None:
    base = f"/api/v1/rules/{RS}"
    [listed] = client.get("/api/v1/rules").json()
    assert (listed["ruleset"], listed["active_version"], listed["shadow_version"], listed["draft"]) == (RS, 1, None, None)

    bad = client.put(f"{base}/draft", json={"author": "ann", "content": rules_text(70).replace("value: 70}", "value: high}")})
    assert bad.status_code == 422
    [problem] = bad.json()["problems"]
    assert (problem["rule"], problem["field"], problem["file"]) == ("a1_high_churn", "rules.0.when.0.value", f"{RS}@draft")
    assert bad.json()["detail"][0]["loc"] == ["body", "content", "rules", "0", "when", "0", "value"]
    assert client.get(f"{base}/draft").status_code == 404

    saved = client.put(f"{base}/draft", json={"author": "ann", "content": rules_text(60)})
    assert saved.status_code == 200 and saved.json()["version"] is None and saved.json()["status"] == "draft"
    assert "+      - {field: churn_score, op: gte, value: 60}" in saved.json()["diff"]

    run = client.post(f"{base}/draft/dry-run", json={"as_of": NOW.isoformat()})
    assert run.status_code == 200, run.text
    [a1] = [t for t in run.json()["types"] if t["intervention_type"] == A1]
    assert (a1["active"], a1["draft"], a1["added"]) == (2, 3, 1) and not run.json()["identical"]
    assert client.post(f"{base}/draft/dry-run", json={"content": "rules: [", "as_of": NOW.isoformat()}).status_code == 422

    refused = client.post(f"{base}/draft/publish", json={"author": "ann", "content": rules_text(60, expect_at=55)})
    assert refused.status_code == 422 and refused.json()["problems"][0]["field"] == "rules.0.tests.0.expect"
    assert client.get(f"{base}/draft").json()["content"] == rules_text(60)  # the refused publish wrote nothing
    assert [v["version"] for v in client.get(f"{base}/versions").json()] == [1]

    published = client.post(f"{base}/draft/publish", json={"author": "ann"})
    assert published.status_code == 200 and (published.json()["version"], published.json()["author"]) == (2, "u_test_admin")
    v2 = client.get(f"{base}/versions/2").json()
    assert v2["status"] == "active" and "value: 60" in v2["content"] and v2["diff"].startswith(f"--- {RS}@v1")
    assert client.post(f"{base}/draft/publish", json={"author": "ann"}).status_code == 404  # no draft any more

    assert client.post(f"{base}/versions/2/rollback", json={"author": "bob"}).status_code == 409
    assert client.post(f"{base}/versions/1/shadow", json={"author": "bob"}).json()["status"] == "shadow"
    assert client.get(f"{base}/shadow").json()["decisions"] == 0
    assert client.delete(f"{base}/shadow", params={"author": "bob"}).json()["status"] == "retired"
    assert client.delete(f"{base}/shadow", params={"author": "bob"}).status_code == 404
    rolled = client.post(f"{base}/versions/1/rollback", json={"author": "bob"})
    assert (rolled.json()["version"], rolled.json()["based_on_version"], rolled.json()["status"]) == (3, 1, "active")
    assert [v["status"] for v in client.get(f"{base}/versions").json()] == ["active", "retired", "retired"]

    assert client.get("/api/v1/rules/nope/versions").status_code == 404
    assert client.get(f"{base}/versions/42").status_code == 404
    assert client.put("/api/v1/rules/nope/draft", json={"author": "a", "content": rules_text(60)}).status_code == 404


def test_rules_pages(client: TestClient) -> None:
    page = f"/rules/{RS}"
    del client.headers["Authorization"]  # a browser: the session cookie, and a CSRF token on every form
    csrf = sign_in(client, client.app.state.engine, make_user(client.app.state.engine, "admin", user_id="u_ann"))
    index = client.get("/rules")
    assert index.status_code == 200 and f'href="{page}"' in index.text
    html = client.get(page).text
    assert 'id="version-1"' in html and "<textarea" in html and "a1_high_churn" in html

    bad = rules_text(70).replace("value: 70}", "value: high}")
    refused = client.post(f"{page}/draft", data={"csrf_token": csrf, "content": bad, "action": "save"})
    assert refused.status_code == 422
    assert "rule <code>a1_high_churn</code>, field <code>rules.0.when.0.value</code>" in refused.text
    assert "value: high}" in refused.text  # the admin's text is kept in the editor
    assert client.post(f"{page}/draft", data={"content": rules_text(60), "action": "save"}).status_code == 403  # no CSRF

    saved = client.post(f"{page}/draft", data={"csrf_token": csrf, "content": rules_text(65), "action": "save"})
    assert saved.status_code == 200 and "Draft saved" in saved.text and "Saved by u_ann" in saved.text
    assert "+      - {field: churn_score, op: gte, value: 65}" in saved.text  # the draft's diff against v1
    discarded = client.post(f"{page}/draft", data={"csrf_token": csrf, "content": "", "action": "discard"})
    assert "Draft discarded." in discarded.text and "Saved by u_ann" not in discarded.text

    run = client.post(f"{page}/draft", data={"csrf_token": csrf, "content": rules_text(60), "action": "dry_run"})
    assert run.status_code == 200
    row = re.search(rf'<tr class="changed" data-type="{A1}">(.*?)</tr>', run.text, re.S)
    assert row and re.findall(r'class="num">(\d+)<', row.group(1)) == ["2", "3", "1", "0", "1", "0"]
    assert 'data-tutor="tutor_2"' in run.text

    done = client.post(f"{page}/draft", data={"csrf_token": csrf, "content": rules_text(60), "action": "publish"},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith(f"{page}/versions/2")
    version = client.get(done.headers["location"]).text
    assert '<span class="add">+      - {field: churn_score, op: gte, value: 60}' in version and "is active" in version

    shadowed = client.post(f"{page}/versions/1/shadow", data={"csrf_token": csrf})
    assert shadowed.status_code == 200 and "now runs as shadow" in shadowed.text
    assert "Shadow run: v1" in client.get(page).text
    assert client.post(f"{page}/versions/2/rollback", data={"csrf_token": csrf}).status_code == 409
    assert client.get("/rules/nope").status_code == 404
