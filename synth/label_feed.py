"""The synthetic world's departure records as training labels: in production the same slot would be filled by
an HR system's resignation feed; on real data without one, nothing is wired and the churn model labels by the
PRD inactivity definition.

Only composition roots may take this (worker.py and the CLI hand it to the training code as a callable);
tests/integration/test_truth_privacy.py holds every product module to that. The churn model is trained on these
labels and never sees them as features; no page or API shows them.
"""
from __future__ import annotations


def churn_labels(db):  # noqa: ANN001, ANN201 - Session -> ml.labels.ChurnTruth | None
    """The latest synthetic world's churn instants, or None on a database without a synthetic world."""
    from synth.truth import churn_truth

    try:
        return churn_truth(db)
    except LookupError:
        return None
