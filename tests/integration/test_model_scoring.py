"""The live churn model's daily scores on the prediction rows, beside the rule score, on SQLite and PostgreSQL;
and the rules-file switch (rules/scoring.yaml model.drives_interventions) for which score the intervention
rules read, through the real evaluate -> decide path.

The model is real: XGBoost trained once per module on a 60-day engine-built world (with the simulation's
truth as labels, as the bench does), registered and promoted through the registry. Each test scores a
second, smaller engine-built world in its own database.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from activities.evaluation import EvaluationActivities
from activities.model_scoring import ModelScoringActivities
from api.main import create_app
from core.config import PACKAGE_ROOT, Settings
from core.db import get_engine, session_scope
from core.migrate import upgrade
from domain.evaluation.batch import evaluate_population
from domain.interventions import service as intervention_service
from domain.interventions.facts import enrich
from domain.interventions.models import Intervention, InterventionEvent
from domain.interventions.planning import population_facts
from domain.model_registry.service import promote, register
from domain.model_scoring.service import score_day
from domain.scoring.models import ChurnPrediction
from domain.tutors.models import Tutor
from domain.users.models import User
from ml.dataset import segments
from ml.features import FEATURES, build_features
from ml.labels import HORIZONS, churn_times
from ml.pipeline import fit
from ml.train import GRID, ChurnModel
from rules.scoring import active_scoring_rules
from synth.backfill import backfill
from synth.truth import churn_truth
from tests.auth import as_role, bearer
from tests.factories import seed_people
from workflows.inputs import DecideInput, EvaluateTutorInput, InterventionStep, ScorePopulationInput, ScorePopulationResult

END = datetime(2026, 11, 20, tzinfo=UTC)  # both worlds end at this midnight
DAY0 = END.date()
WINDOWS = ("window_1day_probability", "window_7day_probability", "window_30day_probability", "window_90day_probability")
MODEL_COLUMNS = (*WINDOWS, "model_churn_score", "model_risk_level", "model_factors", "ml_model_version")
RULE_COLUMNS = ("as_of", "churn_score", "risk_level", "contributing_factors", "flags", "facts", "model_version")
# A factor reads as a sentence: "Days since the last session (9) raises the risk". No snake_case feature names.
PLAIN = re.compile(r"^[A-Z][A-Za-z0-9 ,'+\-.%()/:]+ (raises|lowers) the risk$")


@dataclass(frozen=True)
class Trained:
    model: ChurnModel
    data_start: date
    data_end: date
    rows: int


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    url = f"sqlite:///{tmp_path_factory.mktemp('training_world') / 'world.db'}"
    upgrade(url)
    engine = get_engine(url)
    report = backfill(engine, days=60, seed=5, n_tutors=30, sessions_per_day=60, end=END, progress=lambda _: None)
    start, end = report.epoch.date(), (report.end - timedelta(days=1)).date()
    with Session(engine) as db:
        frame = build_features(db, start=start, end=end)
        segs = segments(frame, churn_times(db, frame, truth=churn_truth(db)))
    run = fit(segs, grid=GRID[:1])
    engine.dispose()
    return Trained(model=run.model, data_start=start, data_end=end, rows=len(frame))


def scoring_world(engine: Engine) -> list[str]:
    """A 30-day world of 16 tutors ending at END, rolled up at END: every tutor has a row for DAY0."""
    backfill(engine, days=30, seed=11, n_tutors=16, sessions_per_day=40, end=END, progress=lambda _: None)
    with session_scope(engine) as db:
        evaluate_population(db, as_of=END, rules=active_scoring_rules(PACKAGE_ROOT / "rules"), now=END)
        return list(db.execute(select(Tutor.tutor_id).where(Tutor.status != "churned", Tutor.onboarding_date <= DAY0)
                               .order_by(Tutor.tutor_id)).scalars())


def make_live(engine: Engine, settings: Settings, trained: Trained) -> str:
    with session_scope(engine) as db:
        row = register(db, kind="churn", model=trained.model, features=list(trained.model.names),
                       params=trained.model.params, metrics={}, criterion=None, data_start=trained.data_start,
                       data_end=trained.data_end, label_source="truth", training_rows=trained.rows,
                       models_dir=settings.models_dir, now=END)
        promote(db, row.version, decision={"reason": "first model"}, now=END)
        return row.version


def predictions(engine: Engine, day: date) -> dict[str, ChurnPrediction]:
    with Session(engine, expire_on_commit=False) as db:
        rows = db.execute(select(ChurnPrediction).where(ChurnPrediction.prediction_date == day)).scalars().all()
        db.expunge_all()
    return {r.tutor_id: r for r in rows}


def columns(row: ChurnPrediction, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: getattr(row, n) for n in names}


def isolated(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"models_dir": tmp_path / "models", "temporal_address": "127.0.0.1:1"})


def rules_copy(tmp_path: Path, drives: str) -> Path:
    """The shipped rules with only the drive switch set; the intervention rules are the same file."""
    folder = tmp_path / f"rules_{drives}"
    shutil.copytree(PACKAGE_ROOT / "rules", folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / "scoring.yaml"
    text = path.read_text()
    assert "  drives_interventions: rules" in text
    path.write_text(text.replace("  drives_interventions: rules", f"  drives_interventions: {drives}", 1))
    return folder


# --- scoring -------------------------------------------------------------------------------------------------


def test_the_live_model_scores_every_tutor_beside_the_rule_score(engine: Engine, settings: Settings,
                                                                  trained: Trained, tmp_path: Path) -> None:
    settings = isolated(settings, tmp_path)
    spec = active_scoring_rules(settings.rules_dir).spec
    population = scoring_world(engine)
    rule_before = {t: columns(r, RULE_COLUMNS) for t, r in predictions(engine, DAY0).items()}
    assert set(rule_before) == set(population) and len(population) >= 10
    act = ModelScoringActivities(engine=engine, settings=settings)

    # A fresh install before the first training: nothing live, nothing scored, no failure.
    nothing = act.score_population(ScorePopulationInput(day=DAY0))
    assert nothing == ScorePopulationResult(version=None, scored=0, day=DAY0) and nothing.day == "2026-11-20"
    assert all(r.ml_model_version is None for r in predictions(engine, DAY0).values())

    version = make_live(engine, settings, trained)
    result = act.score_population(ScorePopulationInput(day=DAY0))
    assert (result.version, result.scored, result.day, result.unscored) == (version, len(population), "2026-11-20", 0)
    assert result.risk_changed == []  # the rule score drives: the facts the rules read did not move

    rows = predictions(engine, DAY0)
    with Session(engine) as db:
        frame = build_features(db, start=DAY0, end=DAY0)
    expected = dict(zip(frame.tutor_ids, trained.model.predict(frame.X), strict=True))
    weights = np.array([spec.model.horizon_weights[h] for h in HORIZONS])
    for tutor_id, row in rows.items():
        p = [getattr(row, w) for w in WINDOWS]
        assert 0 <= p[0] <= p[1] <= p[2] <= p[3] <= 1, (tutor_id, p)
        assert p == pytest.approx(expected[tutor_id], abs=1e-6)  # the features as of DAY0 00:00 UTC
        assert row.model_churn_score == pytest.approx(100 * float(weights @ np.array(p)), abs=0.051)
        assert row.model_risk_level == spec.risk_level(row.model_churn_score)
        assert row.ml_model_version == version
        factors = row.model_factors
        assert len(factors) == 3 and len({f["feature"] for f in factors}) == 3
        assert all(set(f) == {"feature", "value", "contribution", "text"} and f["feature"] in FEATURES for f in factors)
        assert [abs(f["contribution"]) for f in factors] == sorted((abs(f["contribution"]) for f in factors), reverse=True)
        assert all(PLAIN.match(f["text"]) and "_" not in f["text"] for f in factors), factors
        assert columns(row, RULE_COLUMNS) == rule_before[tutor_id]  # the rule score is untouched beside it
    assert len({r.model_churn_score for r in rows.values()}) > 3  # it tells tutors apart

    # Idempotent: the same day and version write the same values again.
    snapshot = {t: columns(r, MODEL_COLUMNS) for t, r in rows.items()}
    assert act.score_population(ScorePopulationInput(day=DAY0)).scored == len(population)
    assert {t: columns(r, MODEL_COLUMNS) for t, r in predictions(engine, DAY0).items()} == snapshot

    # A per-session re-evaluation later that day rewrites the rule columns and keeps the model's.
    tutor = population[0]
    later = END + timedelta(hours=10)
    EvaluationActivities(engine=engine, settings=settings).evaluate_tutor(EvaluateTutorInput(tutor_id=tutor, as_of=later))
    row = predictions(engine, DAY0)[tutor]
    assert row.as_of >= later and columns(row, MODEL_COLUMNS) == snapshot[tutor]

    # Without a row for the day (the rollup writes them at 00:00) a tutor is skipped and reported, never given one.
    next_day = END + timedelta(days=1)
    EvaluationActivities(engine=engine, settings=settings).evaluate_tutor(
        EvaluateTutorInput(tutor_id=tutor, as_of=next_day + timedelta(hours=2)))
    with session_scope(engine) as db:
        report = score_day(db, model=trained.model, version=version, day=next_day.date(),
                           rules=active_scoring_rules(settings.rules_dir), now=next_day)
    assert report.scored == 1 and report.unscored == population[1:]
    assert list(predictions(engine, next_day.date())) == [tutor]
    assert act.score_population(ScorePopulationInput(day=next_day.date())).unscored == len(population) - 1

    # Staff see both scores, and which one drives.
    app = create_app(settings)
    scored = predictions(engine, next_day.date())[tutor]
    with TestClient(app) as api:
        api.headers.update(as_role(engine, "people_ops"))
        body = api.get(f"/api/v1/tutors/{tutor}/score").json()
        assert body["churn_score"] == scored.churn_score and body["risk_level"] == scored.risk_level
        assert body["model"] == {"ml_model_version": version, "churn_score": scored.model_churn_score,
                                 "risk_level": scored.model_risk_level,
                                 **{w: getattr(scored, w) for w in WINDOWS}, "factors": scored.model_factors}
        assert (body["drives_interventions"], body["score_source"]) == ("rules", "rules")
        unscored = api.get(f"/api/v1/tutors/{tutor}/score", params={"date": "2026-11-19"})
        assert unscored.status_code == 404  # no row that day: nothing invented
        items = {i["tutor_id"]: i for i in api.get("/api/v1/tutors", params={"limit": 100}).json()["items"]}
        for t in population:
            latest = predictions(engine, next_day.date()).get(t) or rows[t]
            assert (items[t]["model_churn_score"], items[t]["model_risk_level"]) == (latest.model_churn_score,
                                                                                     latest.model_risk_level)
            assert items[t]["churn_score"] == latest.churn_score


# --- which score drives interventions ------------------------------------------------------------------------


def _decide_everyone(engine: Engine, settings: Settings, tutors: list[str], at: datetime) -> dict[str, tuple[dict, Any]]:
    """The lifecycle workflow's two activities for each tutor: evaluate, then decide on the facts it returned."""
    act = EvaluationActivities(engine=engine, settings=settings)
    out = {}
    for tutor in tutors:
        ev = act.evaluate_tutor(EvaluateTutorInput(tutor_id=tutor, as_of=at))
        out[tutor] = (ev.facts, act.decide_interventions(DecideInput(tutor_id=tutor, as_of=at, facts=ev.facts)))
    return out


def _forget_cases(engine: Engine) -> None:
    """Clears the cases a pass created, so the next pass decides from the same (empty) case history and the
    frequency caps of one pass do not hide what the other would do."""
    with session_scope(engine) as db:
        db.execute(delete(InterventionEvent))
        db.execute(delete(Intervention))


def test_the_rules_file_decides_which_score_drives_interventions(engine: Engine, settings: Settings,
                                                                  trained: Trained, tmp_path: Path) -> None:
    by_rules = isolated(settings, tmp_path)
    by_model = by_rules.model_copy(update={"rules_dir": rules_copy(tmp_path, "model")})
    population = scoring_world(engine)
    make_live(engine, by_model, trained)
    fallback, scored_ids = population[-1], population[:-1]

    # The model scores everyone but one tutor; under the model setting the day's stored facts follow at once.
    result = ModelScoringActivities(engine=engine, settings=by_model).score_population(
        ScorePopulationInput(day=DAY0, tutor_ids=scored_ids))
    assert result.scored == len(scored_ids)
    rows = predictions(engine, DAY0)
    differs = [t for t in scored_ids if rows[t].model_risk_level != rows[t].risk_level]
    assert differs, "the model and the rules agree on every level: the switch would show nothing"
    assert result.risk_changed == differs
    assert all(rows[t].facts["risk_level"] == rows[t].model_risk_level for t in scored_ids)
    assert "score_source" not in rows[fallback].facts  # not touched: the model did not score it

    # Pass 1, the shipped setting: the rules read the rule score, and the facts say nothing about the model.
    rule_pass = _decide_everyone(engine, by_rules, population, END + timedelta(hours=9))
    rule_rows = predictions(engine, DAY0)
    for tutor, (facts, decision) in rule_pass.items():
        row = rule_rows[tutor]
        assert (facts["churn_score"], facts["risk_level"]) == (row.churn_score, row.risk_level)
        assert not {"score_source", "model_churn_score", "ml_model_version"} & set(facts)
        assert row.facts == facts  # stored as decided: the dry run replays them
        assert all((p.churn_score, p.risk_level) == (row.churn_score, row.risk_level) for p in decision.plans)
    _forget_cases(engine)

    # Pass 2, drives_interventions: model. Same tutors, same evidence, same (no) cases.
    model_pass = _decide_everyone(engine, by_model, population, END + timedelta(hours=9, minutes=5))
    model_rows = predictions(engine, DAY0)
    for tutor in scored_ids:
        facts, decision = model_pass[tutor]
        row = model_rows[tutor]
        assert (facts["churn_score"], facts["risk_level"]) == (row.model_churn_score, row.model_risk_level)
        assert facts["score_source"] == "model" and facts["ml_model_version"] == row.ml_model_version
        assert (facts["rule_churn_score"], facts["rule_risk_level"]) == (row.churn_score, row.risk_level)
        assert row.facts == facts
        assert all((p.churn_score, p.risk_level) == (row.model_churn_score, row.model_risk_level) for p in decision.plans)
        # Everything else the rules read is the same evaluation.
        rule_facts = rule_pass[tutor][0]
        same = {k: v for k, v in facts.items() if k in rule_facts and k not in ("churn_score", "risk_level")}
        assert same == {k: v for k, v in rule_facts.items() if k not in ("churn_score", "risk_level")}
    facts, decision = model_pass[fallback]
    row = model_rows[fallback]
    assert facts["score_source"] == "rules" and "has not scored this tutor" in facts["score_source_reason"]
    assert (facts["churn_score"], facts["risk_level"]) == (row.churn_score, row.risk_level)

    types = {t: ({p.intervention_type for p in rule_pass[t][1].plans}, {p.intervention_type for p in model_pass[t][1].plans})
             for t in population}
    changed = {t for t, (a, b) in types.items() if a != b}
    assert changed, types  # the switch changes what is created ...
    assert changed <= set(scored_ids) and types[fallback][0] == types[fallback][1]  # ... only where the model scored
    # The dry run reads the stored facts: it sees the score that drove.
    replay = population_facts_at(engine, END + timedelta(hours=10))
    assert all(replay[t]["churn_score"] == model_rows[t].model_churn_score for t in scored_ids)

    # Tutors never see any of it: their notifications carry the message text only.
    tutor, plan = next((t, p) for t in scored_ids for p in model_pass[t][1].plans
                       if p.kind == "automated" and "in_app" in p.channels)
    with session_scope(engine) as db:
        intervention_service.write_messages(db, InterventionStep(plan=plan, step="message", at=END + timedelta(hours=10)))
        db.add(User(user_id="u_tutor", email="tutor@example.test", name="Tutor", role="tutor", tutor_id=tutor))
    row = model_rows[tutor]
    secrets = [row.ml_model_version, f"{row.model_churn_score}", *(f["text"] for f in row.model_factors),
               *(f["feature"] for f in row.model_factors)]
    with TestClient(create_app(by_model)) as api:
        api.headers.update(bearer(engine, "u_tutor"))
        listed = api.get("/api/v1/me/notifications")
        assert listed.status_code == 200 and len(listed.json()) == 1
        assert set(listed.json()[0]) == {"message_id", "subject", "body", "created_at", "opened_at", "responded_at"}
        opened = api.post(f"/api/v1/me/notifications/{listed.json()[0]['message_id']}/open")
        for payload in (listed.text, opened.text):
            low = payload.lower()
            assert not any(word in low for word in ("churn", "risk", "model", "probab", "score", "factor")), payload
            assert not any(s.lower() in low for s in secrets), payload
        # Staff read the same tutor's score with the model beside it, and which one drives.
        body = api.get(f"/api/v1/tutors/{tutor}/score", headers=as_role(engine, "people_ops")).json()
        assert (body["drives_interventions"], body["score_source"]) == ("model", "model")
        assert body["model"]["churn_score"] == row.model_churn_score and body["churn_score"] == row.churn_score


def population_facts_at(engine: Engine, at: datetime) -> dict[str, dict]:
    with Session(engine) as db:
        return population_facts(db, as_of=at)


# --- days at High/Critical follow the driving level ----------------------------------------------------------


def test_days_at_high_or_critical_count_the_level_that_drove_each_day(engine: Engine) -> None:
    (tutor,) = seed_people(engine, tutors=1, students=0, tag="streak")
    today = date(2026, 11, 20)
    # (rule level, model level) per past day, newest first; None: the model did not score that day.
    past = [("High", None), ("Low", "Critical"), ("High", "Low"), ("High", "High")]
    with session_scope(engine) as db:
        for back, (rule, model) in enumerate(past, start=1):
            day = today - timedelta(days=back)
            db.add(ChurnPrediction(tutor_id=tutor, prediction_date=day, as_of=datetime.combine(day, datetime.min.time(), UTC),
                                   churn_score=60.0 if rule == "High" else 10.0, risk_level=rule,
                                   model_churn_score=None if model is None else 50.0, model_risk_level=model,
                                   ml_model_version=None if model is None else "churn-test", model_version="rules:test"))
    at = datetime(2026, 11, 20, 9, tzinfo=UTC)
    with Session(engine) as db:
        by_rules = enrich(db, {tutor: {"risk_level": "High", "tier": "Developing"}}, as_of=at)[tutor]
        by_model = enrich(db, {tutor: {"risk_level": "High", "tier": "Developing", "score_source": "model"}}, as_of=at)[tutor]
        low = enrich(db, {tutor: {"risk_level": "Low", "tier": "Developing", "score_source": "model"}}, as_of=at)[tutor]
    # Rules: today, yesterday (High); the day before was Low.
    assert by_rules["days_high_or_critical"] == 2
    # Model: today, yesterday (not scored: the rule level drove), the day before (model Critical); then model Low.
    assert by_model["days_high_or_critical"] == 3
    assert low["days_high_or_critical"] == 0
