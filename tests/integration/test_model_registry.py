"""Champion/challenger on SQLite and PostgreSQL: the first model goes live, a candidate that beats the live model
on the same validation rows replaces it, a worse one is rejected with both figures recorded, --force overrides
and records who and why, and a live model trained on other features is not compared at all.

"Worse" is real, not faked: the weak candidate is trained on the same rows with the churn times shuffled among
tutors, so it learned noise. Synthetic arrays with a known churn process keep the two fits to seconds; the
engine-built world is exercised by test_model_retrain.py.
"""
from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session

from core.config import Settings
from core.db import get_engine
from domain.model_registry import service as registry
from domain.model_registry.models import ModelVersion
from ml.dataset import Segments, segments
from ml.features import FeatureFrame
from ml.labels import ChurnTruth, churn_times
from ml.lifecycle import CHURN, decide_promotion
from ml.pipeline import fit, mean_auc
from ml.train import GRID, ChurnModel

T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
N_TUTORS, N_DAYS = 120, 80


def synthetic(seed: int = 0) -> tuple[FeatureFrame, ChurnTruth]:
    """Tutors with a latent risk read through a noisy feature; churn is exponential with a risk-dependent rate."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=N_TUTORS)
    ids = np.array([f"t{i:03d}" for i in range(N_TUTORS)], dtype=object)
    churn_day = rng.exponential(100 / np.exp(1.5 * risk))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    churned = {t: (t0 + timedelta(days=float(c)) if c < N_DAYS else None) for t, c in zip(ids, churn_day, strict=True)}
    days = np.datetime64(date(2026, 1, 1), "D") + np.arange(N_DAYS).astype("timedelta64[D]")
    dd, tt = np.meshgrid(np.arange(N_DAYS), np.arange(N_TUTORS), indexing="ij")
    dd, tt = dd.ravel(), tt.ravel()
    X = np.column_stack([risk[tt] + rng.normal(scale=0.3, size=len(tt)), rng.normal(size=len(tt)), dd % 7])
    frame = FeatureFrame(tutor_ids=ids[tt], days=days[dd], X=X.astype(np.float32), names=("risk", "noise", "dow"))
    return frame, ChurnTruth(churned_at=churned, observed_until=t0 + timedelta(days=N_DAYS))


def shuffled(truth: ChurnTruth, seed: int = 3) -> ChurnTruth:
    ids, when = list(truth.churned_at), list(truth.churned_at.values())
    perm = np.random.default_rng(seed).permutation(len(ids))
    return ChurnTruth(churned_at={t: when[p] for t, p in zip(ids, perm, strict=True)},
                      observed_until=truth.observed_until)


@pytest.fixture(scope="module")
def trained() -> tuple[Segments, ChurnModel, ChurnModel]:
    """(the true segments, a model trained on them, a model trained on shuffled churn times)."""
    frame, truth = synthetic()
    segs = segments(frame, churn_times(None, frame, truth=truth))  # truth covers every tutor: no DB read
    good = fit(segs, grid=GRID[:1]).model
    weak = fit(segments(frame, churn_times(None, frame, truth=shuffled(truth))), grid=GRID[:1]).model
    # The premise of the tests below: on the true validation rows the shuffled model is clearly worse.
    assert mean_auc(good, segs, 1) > 0.75 and mean_auc(weak, segs, 1) < mean_auc(good, segs, 1) - 0.15
    return segs, good, weak


@pytest.fixture
def reg_settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, models_dir=tmp_path / "models")


def _register(db: Session, settings: Settings, model: ChurnModel, segs: Segments, at: datetime) -> ModelVersion:
    row = registry.register(db, kind=CHURN, model=model, features=list(model.names), params={},
                            metrics={}, criterion=mean_auc(model, segs, 1), data_start=date(2026, 1, 1),
                            data_end=date(2026, 3, 21), label_source="truth", training_rows=len(segs.frame),
                            models_dir=settings.models_dir, now=at)
    db.commit()
    return row


def test_first_model_goes_live_a_better_one_replaces_it_a_worse_one_is_rejected(
        trained, reg_settings: Settings) -> None:  # noqa: ANN001
    segs, good, weak = trained
    with Session(get_engine(reg_settings.database_url), expire_on_commit=False) as db:
        first = _register(db, reg_settings, weak, segs, T0)
        p = decide_promotion(db, first, segs, settings=reg_settings, now=T0)
        db.commit()
        assert p.promoted and p.decision["reason"] == "no live model" and p.decision["outcome"] == "promoted"
        assert registry.live_version(db, CHURN).version == first.version

        better = _register(db, reg_settings, good, segs, T0 + timedelta(hours=1))
        p = decide_promotion(db, better, segs, settings=reg_settings, now=T0 + timedelta(hours=1))
        db.commit()
        assert p.promoted and p.decision["live_version"] == first.version
        assert p.decision["candidate_auc"] > p.decision["live_auc"] + 0.15 and p.decision["gain"] > 0
        assert registry.get_version(db, first.version).status == "retired"

        worse = _register(db, reg_settings, weak, segs, T0 + timedelta(hours=2))
        p = decide_promotion(db, worse, segs, settings=reg_settings, now=T0 + timedelta(hours=2))
        db.commit()
        assert not p.promoted
        stored = registry.get_version(db, worse.version)
        assert stored.status == "rejected"
        # Both figures, measured on the same validation rows, and the reason are on record.
        assert stored.decision["candidate_auc"] == pytest.approx(mean_auc(weak, segs, 1), abs=1e-6)
        assert stored.decision["live_auc"] == pytest.approx(mean_auc(good, segs, 1), abs=1e-6)
        assert stored.decision["live_version"] == better.version and "does not beat" in stored.decision["reason"]
        assert registry.live_version(db, CHURN).version == better.version


def test_force_promotes_a_worse_candidate_and_records_who_and_why(trained, reg_settings: Settings) -> None:  # noqa: ANN001
    segs, good, weak = trained
    with Session(get_engine(reg_settings.database_url), expire_on_commit=False) as db:
        live = _register(db, reg_settings, good, segs, T0)
        decide_promotion(db, live, segs, settings=reg_settings, now=T0)
        db.commit()
        worse = _register(db, reg_settings, weak, segs, T0 + timedelta(hours=1))
        p = decide_promotion(db, worse, segs, settings=reg_settings, force=True, reason="rollback drill",
                             actor="dana", now=T0 + timedelta(hours=1))
        db.commit()
        assert p.promoted
        stored = registry.get_version(db, worse.version)
        assert stored.status == "live" and stored.promoted_at == T0 + timedelta(hours=1)
        assert stored.decision["forced"] and stored.decision["forced_by"] == "dana"
        assert stored.decision["force_reason"] == "rollback drill" and stored.decision["reason"].startswith("forced: ")
        assert stored.decision["live_auc"] > stored.decision["candidate_auc"]  # what was overridden stays visible
        assert registry.get_version(db, live.version).status == "retired"


def test_min_gain_from_the_rules_file_must_be_exceeded(trained, reg_settings: Settings, tmp_path: Path) -> None:  # noqa: ANN001
    segs, good, weak = trained
    rules = tmp_path / "rules"
    rules.mkdir()
    source = (reg_settings.rules_dir / "scoring.yaml").read_text()
    assert "promotion_min_gain: 0.0" in source
    (rules / "scoring.yaml").write_text(source.replace("promotion_min_gain: 0.0", "promotion_min_gain: 0.4"))
    strict = reg_settings.model_copy(update={"rules_dir": rules})
    with Session(get_engine(reg_settings.database_url), expire_on_commit=False) as db:
        live = _register(db, strict, weak, segs, T0)
        decide_promotion(db, live, segs, settings=strict, now=T0)
        better = _register(db, strict, good, segs, T0 + timedelta(hours=1))
        p = decide_promotion(db, better, segs, settings=strict, now=T0 + timedelta(hours=1))
        db.commit()
        # Better by more than 0.15, but not by the 0.4 the rules ask for.
        assert not p.promoted and p.decision["min_gain"] == 0.4 and 0.15 < p.decision["gain"] < 0.4


def test_a_live_model_on_other_features_is_not_compared(trained, reg_settings: Settings) -> None:  # noqa: ANN001
    segs, good, _ = trained
    renamed = dataclasses.replace(good, names=("risk", "noise", "weekday"))
    with Session(get_engine(reg_settings.database_url), expire_on_commit=False) as db:
        old = _register(db, reg_settings, renamed, segs, T0)
        registry.promote(db, old.version, decision={"reason": "no live model"}, now=T0)
        db.commit()
        candidate = _register(db, reg_settings, good, segs, T0 + timedelta(hours=1))
        p = decide_promotion(db, candidate, segs, settings=reg_settings, now=T0 + timedelta(hours=1))
        db.commit()
        assert not p.promoted and "other features" in p.decision["reason"] and "live_auc" not in p.decision
        assert registry.live_version(db, CHURN).version == old.version
        # A candidate that does not fit the pipeline's features cannot even be evaluated: refused outright.
        stray = _register(db, reg_settings, renamed, segs, T0 + timedelta(hours=2))
        with pytest.raises(ValueError, match="other features than the current pipeline"):
            decide_promotion(db, stray, segs, settings=reg_settings, force=True, reason="x", actor="dana")
