"""The model's churn score 0-100 (PRD "ML Model Details", Output: a weighted combination of the horizon
probabilities) and its risk level, with the weights and the level bounds from rules/scoring.yaml."""
from __future__ import annotations

import numpy as np

from ml.labels import HORIZONS
from rules.scoring import ScoringRuleSet


def churn_scores(probabilities: np.ndarray, rules: ScoringRuleSet, horizons: tuple[int, ...] = HORIZONS) -> np.ndarray:
    """(rows, horizons) probabilities -> (rows,) scores 0-100, rounded to one decimal like the rule score."""
    w = np.array([rules.model.horizon_weights[h] for h in horizons], dtype=np.float64)
    return np.round(100.0 * np.clip(np.asarray(probabilities, dtype=np.float64), 0, 1) @ w, 1)


def risk_levels(scores: np.ndarray, rules: ScoringRuleSet) -> list[str]:
    return [rules.risk_level(float(s)) for s in scores]
