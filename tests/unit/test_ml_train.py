"""The churn model's training pieces: no piece or label reaches past its segment's cut, probabilities are
non-decreasing across horizons for every row (raw and calibrated), the calibration chooser keeps that, SHAP
explanations add up, and the metrics match hand-computed values. Synthetic arrays with a known churn process
keep it fast; the engine-built world checks the split on real feature rows."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sqlmodel import Session

from ml import metrics
from ml import hazard
from ml.dataset import segments
from ml.explain import explain
from ml.features import FeatureFrame, build_features
from ml.labels import HORIZONS, ChurnTimes, ChurnTruth, churn_times
from ml.pipeline import calibration_set, evaluate, fit
from ml.train import GRID, _HorizonScore, calibrator_is_monotone, choose_calibration
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


def times_from(frame: FeatureFrame, truth: ChurnTruth) -> ChurnTimes:
    return churn_times(None, frame, truth=truth)  # truth covers every tutor: the database is never read


@pytest.fixture(scope="module")
def synthetic() -> tuple:
    frame, truth = synthetic_world()
    segs = segments(frame, times_from(frame, truth))
    run = fit(segs, grid=GRID[:2])
    return frame, truth, segs, run


def _assert_inside_cuts(segs) -> None:  # noqa: ANN001
    for seg in (0, 1):
        p = segs.pieces(seg)
        start = segs.as_of[p.row]
        # A piece ends where its exposure ends; it must not reach past what the segment may know.
        end = start + (np.asarray(hazard.EDGES)[p.piece] + p.exposure).astype("timedelta64[D]")
        assert (segs.segment[p.row] == seg).all()
        assert (end <= segs.cut[seg]).all()
        for h in HORIZONS:
            rows, _ = segs.horizon_examples(seg, h)
            assert (segs.as_of[rows] + h * np.timedelta64(1, "D") <= segs.cut[seg]).all()


def test_split_is_70_15_15_by_day_and_nothing_crosses_a_cut(synthetic) -> None:  # noqa: ANN001
    frame, truth, segs, _ = synthetic
    split = segs.split
    assert split.val_start == np.datetime64(START, "D") + 140 and split.test_start == np.datetime64(START, "D") + 170
    _assert_inside_cuts(segs)
    train = segs.pieces(0)
    # Every piece of the future is trained, the last ones from rows old enough to have reached them.
    assert set(train.piece.tolist()) == set(range(len(hazard.EDGES) - 1))
    assert frame.days[train.row[train.piece == 5]].max() == split.val_start - 61
    # Events are exactly the truth's churns seen before the cut, counted once per row.
    churned = {t for t, c in truth.churned_at.items() if c is not None}
    ev_rows = train.row[train.events == 1]
    assert len(ev_rows) == len(np.unique(ev_rows)) and set(frame.tutor_ids[ev_rows]) <= churned
    assert segs.times.at_risk[train.row].all()


def test_split_on_engine_world_keeps_pieces_inside_segments(world: World) -> None:
    with Session(world.engine) as db:
        truth = churn_truth(db)
        frame = build_features(db, start=world.epoch.date(), end=(world.end - timedelta(days=1)).date())
        for times in (churn_times(db, frame, truth=truth), churn_times(db, frame)):  # truth, then inactivity
            segs = segments(frame, times)
            assert len(segs.pieces(0).events)
            _assert_inside_cuts(segs)


def test_predictions_are_monotone_across_horizons_for_every_row(synthetic) -> None:  # noqa: ANN001
    frame, _, _, run = synthetic
    rng = np.random.default_rng(1)
    # Every real row plus extreme and missing inputs: the property must hold everywhere, not just on data.
    wild = rng.normal(scale=10, size=(2000, frame.X.shape[1])).astype(np.float32)
    wild[rng.random(wild.shape) < 0.2] = np.nan
    for X in (frame.X, wild):
        for p in (run.model.predict(X), run.baseline.predict(X)):
            assert p.shape == (len(X), len(HORIZONS))
            assert (np.diff(p, axis=1) >= 0).all()
            assert ((p >= 0) & (p <= 1)).all()


def test_model_learns_the_signal_and_beats_chance(synthetic) -> None:  # noqa: ANN001
    _, _, segs, run = synthetic
    figures = evaluate(run, segs, 2)
    assert figures["xgb_7d"]["positives"] >= 10
    assert figures["xgb_7d"]["auc"] > 0.7 and figures["lr_7d"]["auc"] > 0.7
    assert run.model.calibration in ("none", "isotonic", "sigmoid")


@pytest.mark.parametrize("methods", [("isotonic",), ("sigmoid",), ("isotonic", "sigmoid")])
def test_calibration_chooser_picks_a_method_and_keeps_monotonicity(synthetic, methods) -> None:  # noqa: ANN001
    frame, _, segs, run = synthetic
    z, y, day = calibration_set(run.model, segs)
    cal, method, scores = choose_calibration(z, y, day, methods)
    assert method in (*methods, "none") and set(scores) <= {*methods, "none"}
    if cal is not None:
        assert calibrator_is_monotone(cal)
        zz = run.model.log_cumulative(frame.X)
        p = cal.predict_proba(zz.reshape(-1, 1))[:, 1].reshape(zz.shape)
        assert (np.diff(p, axis=1) >= 0).all()


def test_a_reversing_calibrator_is_detected(synthetic) -> None:  # noqa: ANN001
    _, _, segs, run = synthetic
    z, y, _ = calibration_set(run.model, segs)
    flipped = CalibratedClassifierCV(FrozenEstimator(_HorizonScore()), method="sigmoid").fit(z.reshape(-1, 1), 1 - y)
    assert not calibrator_is_monotone(flipped)


def test_explanations_top3_come_from_the_contribution_vector(synthetic) -> None:  # noqa: ANN001
    frame, _, _, run = synthetic
    X = frame.X[:50]
    contrib, bias = run.model.contributions(X, horizon=30)
    # SHAP is exact: contributions plus bias equal the hazard-weighted mean log daily hazard.
    k = len(hazard.EDGES) - 1
    log_rate = np.log(run.model.daily_hazard(X))
    w = run.model.daily_hazard(X) * hazard.overlap(30)
    w /= w.sum(axis=1, keepdims=True)
    assert contrib.sum(axis=1) + bias == pytest.approx((w * log_rate).sum(axis=1), abs=1e-3)
    assert k == w.shape[1]
    for i, factors in enumerate(explain(run.model, X, horizon=30)):
        assert len(factors) == 3
        top = np.argsort(-np.abs(contrib[i]), kind="stable")[:3]
        assert [f.feature for f in factors] == [frame.names[j] for j in top]
        assert [f.contribution for f in factors] == pytest.approx(contrib[i][top].tolist())
        assert all(f.text for f in factors)
        assert sum(abs(f.contribution) for f in factors) <= np.abs(contrib[i]).sum() + 1e-9


@pytest.mark.parametrize("horizon", HORIZONS)
def test_contributions_skip_only_pieces_the_horizon_gives_no_weight(synthetic, horizon: int) -> None:  # noqa: ANN001
    import xgboost as xgb

    _, _, _, run = synthetic
    model, X = run.model, synthetic[0].X[:40]
    n, k = len(X), len(hazard.EDGES) - 1
    # Every piece's SHAP values, weighted as contributions() weighs them: the pieces it skips add exactly nothing.
    dm = xgb.DMatrix(hazard.all_pieces(X), base_margin=np.zeros(n * k))
    every = model.regressor.get_booster().predict(dm, pred_contribs=True,
                                                  iteration_range=(0, model.regressor.best_iteration + 1))
    w = model.daily_hazard(X) * hazard.overlap(horizon)[None, :]
    w /= w.sum(axis=1, keepdims=True)
    mean = np.einsum("nk,knf->nf", w, every.reshape(k, n, -1))
    contrib, bias = model.contributions(X, horizon=horizon)
    f = len(model.names)
    np.testing.assert_allclose(contrib, mean[:, :f], rtol=0, atol=1e-6)
    np.testing.assert_allclose(bias, mean[:, f:].sum(axis=1), rtol=0, atol=1e-6)


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
