"""The churn model's 35 features per tutor-day (PRD "ML Model Details"), one pipeline for training and scoring.

A row (tutor, day d) describes the tutor as of d 00:00 UTC and is computed only from records strictly before
that instant, in the product's half-open windows [as_of - N days, as_of) (domain/metrics/history.py): sessions
by scheduled_start, a rating from the feed's quick rating until the student's feedback is submitted and from
the feedback after, events by timestamp. Rows exist for tutors onboarded on or before d. The product keeps
only a tutor's current status, not its history, so rows are not filtered by status (that would use the
future); rows after a tutor has churned are dropped by the labels instead (ml/labels.py, ``at_risk``).

Everything older than LOOKBACK_DAYS before as_of is out of sight (except training completions, which are
cumulative), so a row computed alone and inside a long range see exactly the same records.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlmodel import Session

from core.config import PACKAGE_ROOT
from ml import feature_data
from ml.windows import interval_sum, last_day_before, ratio, window_percentiles, window_sum
from rules.scoring import ScoringRuleSet, active_scoring_rules

LOOKBACK_DAYS = 90
NEW_TUTOR_DAYS = 30  # PRD: is_new_tutor (< 30 days)
BIG = np.iinfo(np.int64).max // 4

_SPECS: tuple[tuple[str, str], ...] = (
    # Tenure
    ("tenure_days", "days from onboarding date to d"),
    ("is_new_tutor", "1 when tenure_days < 30"),
    # Activity
    ("sessions_7d", "sessions scheduled in the 7 days before d (no-shows included, as the product counts them)"),
    ("sessions_30d", "sessions scheduled in the 30 days before d"),
    ("sessions_90d", "sessions scheduled in the 90 days before d"),
    ("sessions_trend", "sessions_7d / (sessions_30d * 7/30) - 1: last week against the 30-day weekly rate; NaN if none in 30d"),
    ("days_since_last_session", "d minus the day of the last held session (1 = yesterday); NaN if none in 90 days"),
    # Performance
    ("avg_rating_7d", "mean rating of held sessions in 7d (feedback rating once submitted before d, else quick rating)"),
    ("avg_rating_30d", "the same over 30 days; NaN when nothing is rated"),
    ("rating_trend", "avg_rating_7d - avg_rating_30d, in stars"),
    ("first_session_success_rate", "share of rated first sessions (session_number 1) in 90d rated >= 4 (scoring rules)"),
    # Engagement
    ("login_frequency_7d", "logins per day over 7 days"),
    ("login_frequency_30d", "logins per day over 30 days"),
    ("engagement_score", "the product's 30-day engagement composite (logins, prep, replies; rules/scoring.yaml)"),
    ("response_time_p50", "median reply minutes to messages in 30 days; NaN if none"),
    ("response_time_p95", "95th percentile reply minutes in 30 days; NaN if none"),
    # Behavioural
    ("reschedule_rate_7d", "tutor-initiated reschedules / scheduled sessions, 7 days; NaN if none scheduled"),
    ("reschedule_rate_30d", "the same over 30 days"),
    ("no_show_count_14d", "no-shows in 14 days"),
    ("no_show_count_30d", "no-shows in 30 days"),
    ("late_start_count_30d", "held sessions started late (late_start_minutes > 0) in 30 days"),
    # Schedule: the feed carries availability changes, not absolute availability, so booked hours stand in
    ("availability_hours_current_week", "hours of sessions scheduled in the 7 days before d (availability proxy)"),
    ("availability_change_pct", "declared availability change (sum hours/week deltas, 30d) / weekly booked hours over 30d; NaN if none booked"),
    # Development
    ("training_completion_rate", "share of the required training modules (scoring rules) completed before d, ever"),
    ("subjects_taught_count", "distinct subjects of held sessions in 90 days"),
    # Temporal
    ("day_of_week", "d's weekday, 0 = Monday"),
    ("month", "d's month, 1-12"),
    ("is_holiday_season", "1 from 20 November to 5 January (Thanksgiving to New Year)"),
    # Extras: the PRD §1.4 churn indicators and the rest of the engagement composite
    ("login_change_14d", "logins in the last 14 days / logins in the 14 before - 1 (PRD engagement decline); NaN if none before"),
    ("activity_vs_baseline_21d", "weekly sessions over 21d / weekly sessions over the tenure part of days 22-90 back (PRD reduced activity)"),
    ("engagement_trend", "7-day engagement composite / 30-day composite - 1; NaN if the 30-day one is 0"),
    ("session_prep_minutes_30d", "mean prep minutes per login in 30 days; NaN if no login reported prep"),
    ("objectives_met_rate_30d", "share of held sessions in 30 days whose learning objectives were met (of those reporting)"),
    ("days_active_14d", "distinct days with a held session in 14 days (PRD inactivity is 14 days without one)"),
    ("availability_delta_hours_30d", "sum of declared hours/week availability deltas in 30 days"),
)
FEATURES: list[str] = [name for name, _ in _SPECS]
DESCRIPTIONS: dict[str, str] = dict(_SPECS)
assert len(FEATURES) == 35 and len(set(FEATURES)) == 35


@dataclass(frozen=True)
class FeatureFrame:
    tutor_ids: np.ndarray  # str, one per row
    days: np.ndarray  # datetime64[D]: the row's day d; features are as of d 00:00 UTC
    X: np.ndarray  # float32 (rows, 35), NaN where undefined
    names: tuple[str, ...] = tuple(FEATURES)

    def __len__(self) -> int:
        return len(self.tutor_ids)

    def column(self, name: str) -> np.ndarray:
        return self.X[:, self.names.index(name)]

    def row(self, tutor_id: str, day: date) -> np.ndarray:
        hit = np.flatnonzero((self.tutor_ids == tutor_id) & (self.days == np.datetime64(day, "D")))
        if len(hit) != 1:
            raise KeyError((tutor_id, day))
        return self.X[hit[0]]


def default_rules() -> ScoringRuleSet:
    return active_scoring_rules(PACKAGE_ROOT / "rules").spec


def is_holiday_season(days: np.ndarray) -> np.ndarray:
    months = days.astype("datetime64[M]").astype(int) % 12 + 1
    dom = (days - days.astype("datetime64[M]")).astype(int) + 1
    return ((months == 11) & (dom >= 20)) | (months == 12) | ((months == 1) & (dom <= 5))


def build_features(db: Session, *, start: date, end: date, tutor_ids: Sequence[str] | None = None,
                   rules: ScoringRuleSet | None = None) -> FeatureFrame:
    """One row per (tutor, day d) for d in start..end inclusive and tutors onboarded on or before d, ordered by
    day then tutor id."""
    if end < start:
        raise ValueError("end must not be before start")
    rules = rules or default_rules()
    data = feature_data.load(db, first_as_of=start, last_as_of=end, lookback_days=LOOKBACK_DAYS, tutor_ids=tutor_ids)
    g = data.grid
    # Rows: grid day k = LOOKBACK_DAYS + (d - start); ordered by day, then tutor.
    ks = np.arange(LOOKBACK_DAYS, g.n_days)
    kk, tt = np.meshgrid(ks, np.arange(len(g.tutor_ids)), indexing="ij")
    kk, tt = kk.ravel(), tt.ravel()
    keep = g.onboarding_day[tt] <= kk
    kk, tt = kk[keep], tt[keep]
    cols = _columns(data, rules, tt, kk)
    X = np.column_stack([np.asarray(cols[n], dtype=np.float64) for n in FEATURES]).astype(np.float32)
    days = np.datetime64(g.base.date(), "D") + kk.astype("timedelta64[D]")
    return FeatureFrame(tutor_ids=np.array(g.tutor_ids, dtype=object)[tt], days=days, X=X)


def rated_window(s: feature_data.Sessions, value: tuple[np.ndarray, np.ndarray], mask: np.ndarray, days: int,
           shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(sum, count) of ``value`` (indexed like ratings: quick then feedback) over sessions in the window, each
    carrying its quick rating until its feedback becomes visible and the feedback rating from then on."""
    quick_v, fb_v = value
    end = s.day + 1 + days  # the first as-of day the session has left the window
    has_fb = ~np.isnan(s.feedback) & mask
    switch = np.where(has_fb, np.maximum(s.feedback_visible, s.day + 1), BIG)
    q = ~np.isnan(s.quick) & mask
    total = (interval_sum(s.tutor[q], s.day[q] + 1, np.minimum(end, switch)[q], quick_v[q], shape)
             + interval_sum(s.tutor[has_fb], switch[has_fb], end[has_fb], fb_v[has_fb], shape))
    count = (interval_sum(s.tutor[q], s.day[q] + 1, np.minimum(end, switch)[q], 1.0, shape)
             + interval_sum(s.tutor[has_fb], switch[has_fb], end[has_fb], 1.0, shape))
    return total, count


def engagement_composite(data: feature_data.FeatureData, rules: ScoringRuleSet, days: int) -> np.ndarray:
    """The product's composite (domain/metrics/service.py engagement_parts/engagement_score), vectorised."""
    e, shape = rules.engagement, data.grid.shape
    lg, rs = data.logins, data.responses
    logins = window_sum(lg.tutor, lg.day, 1.0, days, shape)
    has_prep = ~np.isnan(lg.value)
    prep = ratio(window_sum(lg.tutor[has_prep], lg.day[has_prep], lg.value[has_prep], days, shape),
                 window_sum(lg.tutor[has_prep], lg.day[has_prep], 1.0, days, shape))
    has_r = ~np.isnan(rs.value)
    reply = ratio(window_sum(rs.tutor[has_r], rs.day[has_r], rs.value[has_r], days, shape),
                  window_sum(rs.tutor[has_r], rs.day[has_r], 1.0, days, shape))
    login_part = np.minimum(1.0, logins / (days * e.expected_logins_per_day))
    # No logins means no prep was done (0), while no messages leaves the communication part out.
    prep_part = np.minimum(1.0, np.nan_to_num(prep, nan=0.0) / e.expected_prep_minutes)
    span = e.response_bad_minutes - e.response_good_minutes
    comm = np.clip((e.response_bad_minutes - reply) / span, 0.0, 1.0)
    present = ~np.isnan(comm)
    num = e.login_weight * login_part + e.prep_weight * prep_part + np.where(present, e.communication_weight * comm, 0.0)
    den = e.login_weight + e.prep_weight + np.where(present, e.communication_weight, 0.0)
    return num / den


def _columns(data: feature_data.FeatureData, rules: ScoringRuleSet, tt: np.ndarray, kk: np.ndarray) -> dict:
    g, s, shape = data.grid, data.sessions, data.grid.shape

    def at(a: np.ndarray) -> np.ndarray:  # a (tutor, day) grid read at the rows
        return a[tt, kk]

    def count(mask: np.ndarray, days: int, weight: np.ndarray | float = 1.0) -> np.ndarray:
        w = weight[mask] if isinstance(weight, np.ndarray) else weight
        return at(window_sum(s.tutor[mask], s.day[mask], w, days, shape))

    every = np.ones(len(s.tutor), dtype=bool)
    c: dict[str, np.ndarray] = {}
    tenure = kk - g.onboarding_day[tt]
    c["tenure_days"], c["is_new_tutor"] = tenure, tenure < NEW_TUTOR_DAYS

    for n in (7, 30, 90):
        c[f"sessions_{n}d"] = count(every, n)
    c["sessions_trend"] = ratio(c["sessions_7d"], c["sessions_30d"] * 7 / 30) - 1
    last = at(last_day_before(s.tutor[s.held], s.day[s.held], shape))
    since = (kk - last).astype(np.float64)
    c["days_since_last_session"] = np.where((last >= 0) & (since <= LOOKBACK_DAYS), since, np.nan)

    ratings = (s.quick, s.feedback)
    for n in (7, 30):
        total, cnt = rated_window(s, ratings, s.held, n, shape)
        c[f"avg_rating_{n}d"] = ratio(at(total), at(cnt))
    c["rating_trend"] = c["avg_rating_7d"] - c["avg_rating_30d"]
    good = rules.first_session_success_rating
    success = ((s.quick >= good).astype(np.float64), (s.feedback >= good).astype(np.float64))
    total, cnt = rated_window(s, success, s.held & (s.number == 1), LOOKBACK_DAYS, shape)
    c["first_session_success_rate"] = ratio(at(total), at(cnt))

    lg, rs, av = data.logins, data.responses, data.availability
    logins7, logins30 = (at(window_sum(lg.tutor, lg.day, 1.0, n, shape)) for n in (7, 30))
    c["login_frequency_7d"], c["login_frequency_30d"] = logins7 / 7, logins30 / 30
    eng7, eng30 = at(engagement_composite(data, rules, 7)), at(engagement_composite(data, rules, 30))
    c["engagement_score"], c["engagement_trend"] = eng30, ratio(eng7, eng30) - 1
    has_r = ~np.isnan(rs.value)
    p = window_percentiles(rs.tutor[has_r], rs.day[has_r], rs.value[has_r], 30, tt, kk, (50.0, 95.0), g.n_days)
    c["response_time_p50"], c["response_time_p95"] = p[:, 0], p[:, 1]

    for n in (7, 30):
        c[f"reschedule_rate_{n}d"] = ratio(count(s.rescheduled, n), c[f"sessions_{n}d"])
    c["no_show_count_14d"], c["no_show_count_30d"] = count(s.no_show, 14), count(s.no_show, 30)
    c["late_start_count_30d"] = count(s.late, 30)

    c["availability_hours_current_week"] = count(every, 7, s.hours)
    has_delta = ~np.isnan(av.value)
    delta30 = at(window_sum(av.tutor[has_delta], av.day[has_delta], av.value[has_delta], 30, shape))
    c["availability_delta_hours_30d"] = delta30
    c["availability_change_pct"] = ratio(delta30, count(every, 30, s.hours) * 7 / 30)

    required = set(rules.secondary.required_training_modules)
    done = [(t, v) for t, m, v in data.trainings if m in required]
    t_idx = np.array([t for t, _ in done], dtype=np.int64)
    visible = np.array([v for _, v in done], dtype=np.int64)
    c["training_completion_rate"] = at(interval_sum(t_idx, visible, np.full(len(done), g.n_days), 1.0, shape)) / len(required)
    c["subjects_taught_count"] = _subjects(s, shape, tt, kk)

    days = np.datetime64(g.base.date(), "D") + kk.astype("timedelta64[D]")
    c["day_of_week"] = (days.astype(np.int64) - 4) % 7  # 1970-01-01 was a Thursday (3 with Monday = 0)
    c["month"] = days.astype("datetime64[M]").astype(np.int64) % 12 + 1
    c["is_holiday_season"] = is_holiday_season(days)

    logins14, logins28 = (at(window_sum(lg.tutor, lg.day, 1.0, n, shape)) for n in (14, 28))
    c["login_change_14d"] = ratio(logins14, logins28 - logins14) - 1
    s21 = count(every, 21)
    baseline_days = np.clip(tenure - 21, 0, LOOKBACK_DAYS - 21)
    c["activity_vs_baseline_21d"] = ratio(s21 / 21, ratio(c["sessions_90d"] - s21, baseline_days))
    has_prep = ~np.isnan(lg.value)
    c["session_prep_minutes_30d"] = ratio(at(window_sum(lg.tutor[has_prep], lg.day[has_prep], lg.value[has_prep], 30, shape)),
                                          at(window_sum(lg.tutor[has_prep], lg.day[has_prep], 1.0, 30, shape)))
    reported = ~np.isnan(s.objectives)
    c["objectives_met_rate_30d"] = ratio(count(reported, 30, np.nan_to_num(s.objectives)), count(reported, 30))
    active = np.unique(s.tutor[s.held] * g.n_days + s.day[s.held])
    c["days_active_14d"] = at(window_sum(active // g.n_days, active % g.n_days, 1.0, 14, shape))
    return c


def _subjects(s: feature_data.Sessions, shape: tuple[int, int], tt: np.ndarray, kk: np.ndarray) -> np.ndarray:
    """Distinct subjects in 90 days: each (tutor, subject) pair is its own grid row, counted where non-zero."""
    held = s.held
    n_subjects = int(s.subject.max()) + 1 if len(s.subject) else 1
    pair = s.tutor[held] * n_subjects + s.subject[held]
    pairs, inverse = np.unique(pair, return_inverse=True)
    per_pair = window_sum(inverse, s.day[held], 1.0, LOOKBACK_DAYS, (len(pairs), shape[1])) > 0
    per_tutor = np.zeros(shape)
    np.add.at(per_tutor, pairs // n_subjects, per_pair)
    return per_tutor[tt, kk]
