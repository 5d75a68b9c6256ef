"""The drive switch's facts (domain/model_scoring/drive.py) and the scoring's refusal of a model trained on other
features. The database-backed scoring itself is tested in tests/integration/test_model_scoring.py."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from sqlmodel import Session

from domain.model_scoring.drive import DRIVE_KEYS, driving_facts, is_model_driven
from domain.model_scoring.service import ModelMismatch, score_day
from domain.scoring.models import ChurnPrediction
from ml.dataset import segments
from ml.features import FeatureFrame
from ml.labels import ChurnTruth, churn_times
from ml.pipeline import fit
from ml.train import GRID
from rules.scoring import ScoringRules
from tests.unit.engine_fixtures import RULES, World

DAY = date(2026, 11, 20)
FACTS = {"churn_score": 31.0, "risk_level": "Medium", "tier": "Developing", "metrics_below_threshold": 1}


def _row(model_score: float | None = None, model_level: str | None = None) -> ChurnPrediction:
    return ChurnPrediction(tutor_id="t1", prediction_date=DAY, as_of=datetime(2026, 11, 20, 9, tzinfo=UTC),
                           churn_score=31.0, risk_level="Medium", model_churn_score=model_score,
                           model_risk_level=model_level, ml_model_version="churn-x" if model_score is not None else None,
                           model_version="rules:scoring@v3")


def _spec(drives: str):  # noqa: ANN202
    return RULES.model_copy(update={"model": RULES.model.model_copy(update={"drives_interventions": drives})})


def test_under_the_rules_setting_the_facts_pass_through_untouched() -> None:
    facts = dict(FACTS)
    assert driving_facts(facts, _row(71.5, "High"), _spec("rules")) is facts
    assert facts == FACTS and not is_model_driven(facts)


def test_under_the_model_setting_the_model_score_drives_and_both_are_kept() -> None:
    out = driving_facts(dict(FACTS), _row(71.5, "High"), _spec("model"))
    assert (out["churn_score"], out["risk_level"], out["score_source"]) == (71.5, "High", "model")
    assert (out["rule_churn_score"], out["rule_risk_level"]) == (31.0, "Medium")
    assert out["ml_model_version"] == "churn-x" and "churn-x" in out["score_source_reason"]
    assert {k: v for k, v in out.items() if k not in DRIVE_KEYS and k not in ("churn_score", "risk_level")} == \
        {k: v for k, v in FACTS.items() if k not in ("churn_score", "risk_level")}
    assert is_model_driven(out)


def test_an_unscored_tutor_falls_back_to_the_rule_score_with_the_reason() -> None:
    out = driving_facts(dict(FACTS), _row(), _spec("model"))
    assert (out["churn_score"], out["risk_level"], out["score_source"]) == (31.0, "Medium", "rules")
    assert out["score_source_reason"] == "the churn model has not scored this tutor for 2026-11-20: the rule score drives"
    assert out["model_churn_score"] is None and is_model_driven(out)


def test_swapping_twice_is_swapping_once() -> None:
    row = _row(71.5, "High")
    once = driving_facts(dict(FACTS), row, _spec("model"))
    assert driving_facts(dict(once), row, _spec("model")) == once
    # A later fallback on the same facts (the model's columns gone) restores the rule score, not the old model one.
    assert driving_facts(dict(once), _row(), _spec("model"))["churn_score"] == 31.0


def test_a_model_trained_on_other_features_is_refused_before_anything_is_read(world: World) -> None:
    """A real model, trained on four synthetic features: scoring the product's 35 with it must fail loudly."""
    rng = np.random.default_rng(3)
    n_tutors, n_days = 60, 60
    risk = rng.normal(size=n_tutors)
    ids = np.array([f"s{i:03d}" for i in range(n_tutors)], dtype=object)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    churn_day = rng.exponential(100 / np.exp(1.5 * risk))
    truth = ChurnTruth(churned_at={t: start + timedelta(days=float(c)) if c < n_days else None
                                   for t, c in zip(ids, churn_day, strict=True)},
                       observed_until=start + timedelta(days=n_days))
    dd, tt = (a.ravel() for a in np.meshgrid(np.arange(n_days), np.arange(n_tutors), indexing="ij"))
    X = np.column_stack([risk[tt] + rng.normal(scale=0.5, size=len(tt)), rng.normal(size=len(tt)),
                         rng.normal(size=len(tt)), dd % 7]).astype(np.float32)
    frame = FeatureFrame(tutor_ids=ids[tt], days=np.datetime64("2026-01-01", "D") + dd.astype("timedelta64[D]"),
                         X=X, names=("a", "b", "c", "dow"))
    model = fit(segments(frame, churn_times(None, frame, truth=truth)), grid=GRID[:1]).model
    rules = ScoringRules(spec=RULES, hash="unit")
    with Session(world.engine) as db, pytest.raises(ModelMismatch, match="4 features"):
        score_day(db, model=model, version="churn-other", day=DAY, rules=rules, now=datetime.now(UTC))
