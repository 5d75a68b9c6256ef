"""Which churn score the intervention rules read: rules/scoring.yaml ``model.drives_interventions``.

Under ``rules`` (the default) an evaluation's facts are passed through untouched. Under ``model`` the facts'
churn_score and risk_level become the model's score of the prediction row's day when the model has scored
that tutor, and stay the rule score otherwise, with the reason recorded. Both scores are kept beside it and
``score_source`` says which one drove, so the stored facts (which the dry run replays and the A4 follow-up
reads) show exactly what the decision saw.

The swap happens where the facts are stored (domain/evaluation/store.py, for both the per-session evaluation
and the daily rollup) and again when the model scores a day's rows (domain/model_scoring/service.py), so
every reader of the facts sees the same driving score. Standard library and the row only: this runs on every
evaluation.
"""
from __future__ import annotations

from typing import Any

from domain.scoring.models import ChurnPrediction
from rules.scoring import ScoringRuleSet

# Present in a tutor's facts only when the model setting is on: its presence is how the history facts
# (domain/interventions/facts.py, days at High/Critical) know to read the model's past levels too.
SOURCE = "score_source"
DRIVE_KEYS = (SOURCE, "score_source_reason", "rule_churn_score", "rule_risk_level", "model_churn_score",
              "model_risk_level", "ml_model_version")


def model_drives(spec: ScoringRuleSet) -> bool:
    return spec.model.drives_interventions == "model"


def is_model_driven(facts: dict[str, Any]) -> bool:
    return SOURCE in facts


def driving_facts(facts: dict[str, Any], pred: ChurnPrediction, spec: ScoringRuleSet) -> dict[str, Any]:
    """``facts`` (an evaluation's) with the driving score in churn_score / risk_level.

    The rule score is read from the row's own columns, not from ``facts``, so applying this to facts that were
    already swapped gives the same result (the model scoring refreshes a day's stored facts this way).
    """
    if not model_drives(spec):
        return facts
    out = {k: v for k, v in facts.items() if k not in DRIVE_KEYS}
    out.update(rule_churn_score=pred.churn_score, rule_risk_level=pred.risk_level,
               model_churn_score=pred.model_churn_score, model_risk_level=pred.model_risk_level,
               ml_model_version=pred.ml_model_version)
    day = pred.prediction_date.isoformat()
    if pred.model_churn_score is not None and pred.model_risk_level:
        out.update(churn_score=pred.model_churn_score, risk_level=pred.model_risk_level, score_source="model",
                   score_source_reason=f"model {pred.ml_model_version} score of {day}")
    else:
        out.update(churn_score=pred.churn_score, risk_level=pred.risk_level, score_source="rules",
                   score_source_reason=f"the churn model has not scored this tutor for {day}: the rule score drives")
    return out
