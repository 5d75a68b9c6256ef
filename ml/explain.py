"""The top factors behind a tutor's model churn risk, in plain words, from XGBoost's native SHAP contributions
(ChurnModel.contributions). Staff-facing only: tutors never see risk or its reasons."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

# How a feature reads in a sentence, and the unit of its value. A feature missing here reads as its name.
_PHRASES: dict[str, tuple[str, str]] = {
    "tenure_days": ("time since onboarding", "{:.0f} days"),
    "is_new_tutor": ("being in the first 30 days", "{:.0f}"),
    "sessions_7d": ("sessions in the last 7 days", "{:.0f}"),
    "sessions_30d": ("sessions in the last 30 days", "{:.0f}"),
    "sessions_90d": ("sessions in the last 90 days", "{:.0f}"),
    "sessions_trend": ("last week's sessions against the monthly pace", "{:+.0%}"),
    "days_since_last_session": ("days since the last session", "{:.0f}"),
    "avg_rating_7d": ("average rating this week", "{:.2f} stars"),
    "avg_rating_30d": ("average rating over 30 days", "{:.2f} stars"),
    "rating_trend": ("rating this week against the month", "{:+.2f} stars"),
    "first_session_success_rate": ("first sessions rated 4+", "{:.0%}"),
    "login_frequency_7d": ("logins per day this week", "{:.1f}"),
    "login_frequency_30d": ("logins per day over 30 days", "{:.1f}"),
    "engagement_score": ("engagement score", "{:.0%}"),  # the 0-1 composite
    "response_time_p50": ("typical reply time to messages", "{:.0f} min"),
    "response_time_p95": ("slowest replies to messages (95th percentile)", "{:.0f} min"),
    "reschedule_rate_7d": ("sessions rescheduled by the tutor this week", "{:.0%}"),
    "reschedule_rate_30d": ("sessions rescheduled by the tutor over 30 days", "{:.0%}"),
    "no_show_count_14d": ("no-shows in 14 days", "{:.0f}"),
    "no_show_count_30d": ("no-shows in 30 days", "{:.0f}"),
    "late_start_count_30d": ("late starts in 30 days", "{:.0f}"),
    "availability_hours_current_week": ("hours booked this week", "{:.1f} h"),
    "availability_change_pct": ("declared availability change", "{:+.0%}"),
    "training_completion_rate": ("required training completed", "{:.0%}"),
    "subjects_taught_count": ("subjects taught", "{:.0f}"),
    "day_of_week": ("day of the week", "{:.0f}"),
    "month": ("month", "{:.0f}"),
    "is_holiday_season": ("holiday season", "{:.0f}"),
    "login_change_14d": ("logins in the last two weeks against the two before", "{:+.0%}"),
    "activity_vs_baseline_21d": ("sessions in the last 3 weeks against the tutor's usual pace", "{:.0%}"),
    "engagement_trend": ("engagement this week against the month", "{:+.0%}"),
    "session_prep_minutes_30d": ("prep minutes per login", "{:.0f} min"),
    "objectives_met_rate_30d": ("sessions meeting their objectives", "{:.0%}"),
    "days_active_14d": ("days with a session in the last 14", "{:.0f}"),
    "availability_delta_hours_30d": ("declared availability change over 30 days", "{:+.1f} h/week"),
}
TOP = 3


@dataclass(frozen=True)
class Factor:
    feature: str
    value: float | None  # the tutor's value (None: no data, e.g. no rated session)
    contribution: float  # SHAP contribution to the log hazard (> 0 raises risk)
    text: str

    def as_dict(self) -> dict:
        return asdict(self)


def describe(feature: str, value: float, contribution: float) -> str:
    label, unit = _PHRASES.get(feature, (feature.replace("_", " "), "{:.3g}"))
    shown = "no data" if value is None or math.isnan(value) else unit.format(value)
    direction = "raises" if contribution > 0 else "lowers"
    return f"{label[0].upper()}{label[1:]} ({shown}) {direction} the risk"


def explain(model, X: np.ndarray, horizon: int = 30, top: int = TOP) -> list[list[Factor]]:  # noqa: ANN001
    """For each row the ``top`` features with the largest absolute contribution, largest first."""
    contrib, _bias = model.contributions(X, horizon=horizon)
    out = []
    for x, c in zip(np.asarray(X, dtype=np.float64), contrib, strict=True):
        idx = np.argsort(-np.abs(c), kind="stable")[:top]
        out.append([Factor(feature=model.names[j], value=None if math.isnan(x[j]) else float(x[j]),
                           contribution=float(c[j]), text=describe(model.names[j], float(x[j]), float(c[j])))
                    for j in idx])
    return out
