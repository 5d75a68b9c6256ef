"""The churn model's training pieces: the temporal split never lets a label window cross a cut, probabilities
are non-decreasing across horizons for every row (raw and calibrated), the calibration chooser keeps that, and
the metrics match hand-computed values. Synthetic arrays with a known churn process keep it fast; the
engine-built world checks the split on real feature rows."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sqlmodel import Session

from ml import metrics
from ml.dataset import HORIZON_FEATURE, build_stacked, stack_features, temporal_split
from ml.features import FeatureFrame, build_features
from ml.labels import HORIZONS, ChurnTruth, labels, truth_labels
from ml.train import GRID, calibrator_is_monotone, choose_calibration, fit_baseline, fit_model, predict_horizons
from synth.truth import churn_truth
from tests.unit.engine_fixtures import World

START = date(2026, 1, 1)
N_TUTORS, N_DAYS = 300, 200


def synthetic_world(seed: int = 0) -> tuple[FeatureFrame, ChurnTruth]:
    """Tutors with a latent risk; churn is exponential with a risk-dependent rate; the features are noisy
    daily readings of the risk (one often missing), so churn is learnable but not trivially."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=N_TUTORS)
    ids = np.array([f"t{i:03d}" for i in range(N_TUTORS)], dtype=object)
    churn_day = rng.exponential(400 / np.exp(1.5 * risk))
    observed = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=N_DAYS)
    churned = {t: (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=float(c)) if c < N_DAYS else None)
               for t, c in zip(ids, churn_day, strict=True)}
    days = np.datetime64(START, "D") + np.arange(N_DAYS).astype("timedelta64[D]")
    dd, tt = np.meshgrid(np.arange(N_DAYS), np.arange(N_TUTORS), indexing="ij")
    dd, tt = dd.ravel(), tt.ravel()
    X = np.column_stack([risk[tt] + rng.normal(scale=0.5, size=len(tt)), rng.normal(size=len(tt)),
                         np.where(rng.random(len(tt)) < 0.3, np.nan, risk[tt] + rng.normal(scale=2.0, size=len(tt))),
                         dd % 7]).astype(np.float32)
    frame = FeatureFrame(tutor_ids=ids[tt], days=days[dd], X=X, names=("a", "b", "c", "dow"))
    return frame, ChurnTruth(churned_at=churned, observed_until=observed)


@pytest.fixture(scope="module")
def synthetic() -> tuple:
    frame, truth = synthetic_world()
    lab = truth_labels(frame, truth)
    split = temporal_split(frame.days, truth.observed_until)
    data = build_stacked(frame, lab, split)
    model = fit_model(data, frame.days[data.row], grid=GRID[:2])
    return frame, lab, split, data, model


def _assert_windows_close(frame: FeatureFrame, split, data) -> None:  # noqa: ANN001
    as_of = frame.days[data.row].astype("datetime64[s]")
    window_end = as_of + data.horizon.astype("timedelta64[D]")
    cuts = {0: split.val_start, 1: split.test_start}
    for seg, cut in cuts.items():
        m = data.segment == seg
        # Feature day inside the segment and the whole label window closed by the next segment's start.
        assert (frame.days[data.row][m] < cut).all()
        assert (window_end[m] <= cut.astype("datetime64[s]")).all()
    assert (window_end <= split.observed_end).all()
    assert (frame.days[data.row][data.segment == 2] >= split.test_start).all()


def test_split_is_70_15_15_by_day_and_no_label_window_crosses_a_cut(synthetic) -> None:  # noqa: ANN001
    frame, lab, split, data, _ = synthetic
    assert split.val_start == np.datetime64(START, "D") + 140 and split.test_start == np.datetime64(START, "D") + 170
    _assert_windows_close(frame, split, data)
    # Per-horizon windows: a 1-day example may sit on the day before the cut, a 90-day one 90 days before it.
    train_1d = frame.days[data.row[data.part(0, 1)]]
    train_90d = frame.days[data.row[data.part(0, 90)]]
    assert train_1d.max() == split.val_start - 1 and train_90d.max() == split.val_start - 90
    assert data.names[-1] == HORIZON_FEATURE and data.X.shape[1] == frame.X.shape[1] + 1
    # Only tutors still at risk: no example from a day at or after the tutor's churn day.
    assert lab.at_risk[data.row].all()


def test_split_on_engine_world_keeps_windows_inside_segments(world: World) -> None:
    with Session(world.engine) as db:
        truth = churn_truth(db)
        frame = build_features(db, start=world.epoch.date(), end=(world.end - timedelta(days=1)).date())
        lab = labels(db, frame, HORIZONS, truth=truth)
    split = temporal_split(frame.days, truth.observed_until)
    data = build_stacked(frame, lab, split)
    assert data.part(0).any()
    _assert_windows_close(frame, split, data)


def test_predictions_are_monotone_across_horizons_for_every_row(synthetic) -> None:  # noqa: ANN001
    frame, _, _, _, model = synthetic
    rng = np.random.default_rng(1)
    # Every real row plus extreme and missing inputs: the constraint must hold everywhere, not just on data.
    wild = rng.normal(scale=10, size=(2000, frame.X.shape[1])).astype(np.float32)
    wild[rng.random(wild.shape) < 0.2] = np.nan
    for X in (frame.X, wild):
        p = predict_horizons(model, X)
        assert p.shape == (len(X), len(HORIZONS))
        assert (np.diff(p, axis=1) >= 0).all()
        assert ((p >= 0) & (p <= 1)).all()
    raw = model.xgb.predict_proba(stack_features(frame.X, HORIZONS))[:, 1].reshape(len(HORIZONS), -1).T
    assert (np.diff(raw, axis=1) >= 0).all()


def test_model_learns_the_signal_and_beats_chance(synthetic) -> None:  # noqa: ANN001
    _, _, _, data, model = synthetic
    te = data.part(2)  # every horizon's test examples (the test segment is too short for many 30-day ones)
    assert data.y[te].sum() >= 20
    assert metrics.auc(data.y[te], model.proba(data.X[te])) > 0.7
    baseline = fit_baseline(data)
    assert metrics.auc(data.y[te], baseline.predict_proba(data.X[te])[:, 1]) > 0.7


@pytest.mark.parametrize("methods", [("isotonic",), ("sigmoid",), ("isotonic", "sigmoid")])
def test_calibration_chooser_picks_a_method_and_keeps_monotonicity(synthetic, methods) -> None:  # noqa: ANN001
    frame, _, _, data, model = synthetic
    va = data.part(1)
    cal, method, _ = choose_calibration(model.xgb, data.X[va], data.y[va], frame.days[data.row[va]], methods)
    assert method in methods and cal is not None and calibrator_is_monotone(cal)
    p = cal.predict_proba(stack_features(frame.X, HORIZONS))[:, 1].reshape(len(HORIZONS), -1).T
    assert (np.diff(p, axis=1) >= 0).all()


def test_a_reversing_calibrator_is_detected(synthetic) -> None:  # noqa: ANN001
    _, _, _, data, model = synthetic
    va = data.part(1)
    flipped = CalibratedClassifierCV(FrozenEstimator(model.xgb), method="sigmoid").fit(data.X[va], 1 - data.y[va])
    assert not calibrator_is_monotone(flipped)


def test_metrics_against_hand_computed_values() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0], dtype=float)
    p = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.05, 0.3, 0.15, 0.25, 0.35])
    # Pairs (pos, neg): 0.9 beats all 8; 0.7 beats 7 of 8 (not 0.8) -> 15/16.
    assert metrics.auc(y, p) == pytest.approx(15 / 16)
    assert metrics.precision_at(y, p, 0.10) == 1.0  # top 1 of 10
    assert metrics.precision_at(y, p, 0.30) == pytest.approx(2 / 3)  # top 3: 0.9, 0.8, 0.7
    assert metrics.lift_at(y, p, 0.10) == pytest.approx(1.0 / 0.2)
    b = np.mean((p - y) ** 2)
    assert metrics.brier(y, p) == pytest.approx(b)
    assert metrics.brier_skill(y, p) == pytest.approx(1 - b / (0.2 * 0.8))
    assert metrics.brier_skill(y, np.full(10, 0.2)) == pytest.approx(0.0)
    # ECE by hand: bins [0.0,0.1): 0.05 (y0); [0.1,0.2): 0.1, 0.15; [0.2,0.3): 0.2, 0.25; [0.3,0.4): 0.3, 0.35;
    # [0.7,0.8): 0.7 (y1); [0.8,0.9): 0.8 (y0); [0.9,1.0]: 0.9 (y1).
    expected = (0.1 * 0.05 + 0.2 * 0.125 + 0.2 * 0.225 + 0.2 * 0.325 + 0.1 * 0.3 + 0.1 * 0.8 + 0.1 * 0.1)
    assert metrics.ece(y, p) == pytest.approx(expected)
    assert metrics.ece(np.array([1.0]), np.array([1.0])) == 0.0  # p = 1 lands in the last bin
    assert np.isnan(metrics.auc(np.zeros(3), np.arange(3.0)))
