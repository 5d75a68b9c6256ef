"""The live churn model's scores of one UTC day, written onto that day's prediction rows beside the rule score.

For every tutor the product evaluates (not churned, onboarded by the day, the daily rollup's population in
domain/evaluation/batch.py: inactive tutors included, since a tutor drifting away is who the model is for) the
features as of the day's 00:00 UTC go through the model: the four horizon probabilities (window_*), the
model churn score and risk level (ml/score.py, weights and bounds from rules/scoring.yaml), the top-3 factors
in plain words (ml/explain.py) and the model version.

A tutor with no prediction row for the day is skipped and reported, not given a row. A row's rule columns
are an evaluation as of its ``as_of``; copying an older day's rule score into a new row would pass a stale
score off as today's, and would count today as High/Critical for H1's streak on yesterday's evidence. The
midnight rollup writes every tutor's row at 00:00, so the scoring runs after it; a skipped tutor is scored
by the next run once the row exists.

Re-running for the same day and version writes the same values (the features only see records before
00:00). The per-session re-evaluations later that day update the rule columns in place and leave these alone
(domain/evaluation/store.py).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
from sqlalchemy import select
from sqlmodel import Session

from domain.model_scoring.drive import driving_facts, model_drives
from domain.scoring.models import ChurnPrediction
from domain.tutors.models import Tutor, TutorStatus
from ml.explain import explain
from ml.features import FEATURES, build_features
from ml.labels import HORIZONS
from ml.score import churn_scores, risk_levels
from rules.scoring import ScoringRules

Progress = Callable[[str], None]
WINDOWS = ("window_1day_probability", "window_7day_probability", "window_30day_probability",
           "window_90day_probability")


class ModelMismatch(ValueError):
    """The model was trained on other features, or for other horizons, than this pipeline produces."""


@dataclass
class ScoringReport:
    day: date
    version: str
    scored: int = 0
    unscored: list[str] = field(default_factory=list)  # no prediction row for the day yet: skipped
    # Under drives_interventions: model, tutors whose driving risk level moved with this scoring: their
    # workflows should re-decide, as the rollup does for rule-level moves.
    risk_changed: list[str] = field(default_factory=list)
    seconds: float = 0.0


def population(db: Session, day: date, tutor_ids: Sequence[str] | None = None) -> list[str]:
    """The tutors the daily rollup evaluates on ``day`` (domain/evaluation/batch.py ``_population``)."""
    stmt = select(Tutor.tutor_id).where(Tutor.status != TutorStatus.churned.value, Tutor.onboarding_date <= day)
    ids = list(db.execute(stmt.order_by(Tutor.tutor_id)).scalars())
    if tutor_ids is not None:
        wanted = set(tutor_ids)
        ids = [t for t in ids if t in wanted]
    return ids


def _check(model, names: Sequence[str]) -> None:  # noqa: ANN001
    if tuple(model.names) != tuple(names):
        raise ModelMismatch(f"the model was trained on {len(model.names)} features that differ from the "
                            f"pipeline's {len(names)}: retrain it")
    if tuple(model.horizons) != HORIZONS:
        raise ModelMismatch(f"the model predicts horizons {model.horizons}, the churn score needs {HORIZONS}")


def score_day(db: Session, *, model, version: str, day: date, rules: ScoringRules,  # noqa: ANN001
              tutor_ids: Sequence[str] | None = None, now: datetime, progress: Progress | None = None) -> ScoringReport:
    started, spec, say = time.perf_counter(), rules.spec, progress or (lambda _line: None)
    _check(model, FEATURES)  # before anything is read: a wrong model must not write half a day
    report = ScoringReport(day=day, version=version)
    people = population(db, day, tutor_ids)
    day_rows = db.execute(select(ChurnPrediction).where(ChurnPrediction.prediction_date == day)).scalars()
    rows = {r.tutor_id: r for r in day_rows}
    targets = [t for t in people if t in rows]
    report.unscored = [t for t in people if t not in rows]
    if report.unscored:
        say(f"{len(report.unscored)} of {len(people)} tutors have no prediction for {day} yet (the daily rollup "
            f"writes them): skipped")
    if not targets:
        report.seconds = time.perf_counter() - started
        return report
    frame = build_features(db, start=day, end=day, tutor_ids=targets, rules=spec)
    say(f"features for {len(frame)} tutors as of {day} 00:00 UTC in {time.perf_counter() - started:.1f}s")
    probs = np.asarray(model.predict(frame.X), dtype=np.float64)
    scores = churn_scores(probs, spec)
    levels = risk_levels(scores, spec)
    factors = explain(model, frame.X, horizon=spec.model.explain_horizon)
    drives = model_drives(spec)
    for i, tutor_id in enumerate(frame.tutor_ids):
        pred = rows[str(tutor_id)]
        for name, p in zip(WINDOWS, probs[i], strict=True):
            setattr(pred, name, round(float(p), 6))
        pred.model_churn_score, pred.model_risk_level = float(scores[i]), levels[i]
        pred.model_factors = [f.as_dict() for f in factors[i]]
        pred.ml_model_version, pred.updated_at = version, now
        if drives:
            # The day's stored facts are what the dry run replays and the A4 follow-up reads: they follow the
            # driving score now that the model has one. Under the rules setting they are left untouched.
            before = (pred.facts or {}).get("risk_level")
            pred.facts = driving_facts(dict(pred.facts or {}), pred, spec)
            if pred.facts.get("risk_level") != before:
                report.risk_changed.append(str(tutor_id))
        report.scored += 1
    report.seconds = time.perf_counter() - started
    say(f"scored {report.scored} tutors for {day} with {version} in {report.seconds:.1f}s")
    return report


def score_population(db: Session, *, model, version: str, day: date, rules: ScoringRules,  # noqa: ANN001
                     tutor_ids: Sequence[str] | None = None, now: datetime, progress: Progress | None = None) -> int:
    """Scores ``day``'s prediction rows with ``model`` (registry ``version``); returns how many were scored."""
    return score_day(db, model=model, version=version, day=day, rules=rules, tutor_ids=tutor_ids, now=now,
                     progress=progress).scored
