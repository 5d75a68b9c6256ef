"""The logistic-regression baseline the churn model must beat: a discrete-time logistic hazard on the same
pieces and features. Each piece is a binary example (churned in it or not) with the piece (one-hot) and the
log of its exposure as extra inputs, so P(h) = 1 - prod_i (1 - q_i(overlap_i(h))) is monotone in h like the
XGBoost model's, and the two differ only in the learner."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ml import hazard
from ml.labels import HORIZONS

_N_PIECES = len(hazard.EDGES) - 1


def _design(X: np.ndarray, piece: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    onehot = np.eye(_N_PIECES, dtype=np.float32)[piece]
    return np.hstack([X, onehot, np.log(exposure)[:, None]]).astype(np.float32)


@dataclass
class BaselineModel:
    pipe: Pipeline
    horizons: tuple[int, ...] = HORIZONS

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        n = len(X)
        out = np.zeros((n, len(self.horizons)))
        for j, h in enumerate(self.horizons):
            survive = np.ones(n)
            for i, days in enumerate(hazard.overlap(h)):
                if days <= 0:
                    continue
                d = _design(X, np.full(n, i), np.full(n, days, dtype=np.float32))
                survive *= 1 - self.pipe.predict_proba(d)[:, 1]
            out[:, j] = 1 - survive
        return out


def fit_baseline(train: hazard.Pieces, val: hazard.Pieces | None = None) -> BaselineModel:
    """Median imputation with missing-value indicators (NaN means "no such activity", which is informative),
    standardisation, L2; fitted on train and validation together (it has nothing to tune)."""
    parts = [train] if val is None else [train, val]
    X = np.vstack([_design(p.X[:, :-1], p.piece, p.exposure) for p in parts])
    y = np.concatenate([p.events for p in parts])
    pipe = make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                         StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    return BaselineModel(pipe=pipe.fit(X, y))
