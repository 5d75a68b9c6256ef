"""The Analytics & Reporting figures (PRD UI System 1, 1.3): churn by subject x weekday and by tenure cohort,
new vs. tenured tutors, intervention effectiveness and the tutors predicted to churn in the next 30 days.

Everything is "as of" a UTC day: the period is the ``days`` UTC days ending with ``as_of`` (cut at ``now`` when
that day is today), and risk is each tutor's latest prediction made on or before ``as_of``.

Churn, on stored data: the product's inactivity rule (rules/scoring.yaml ``population.inactive_after_days``, the
PRD's 14 days, as ml/labels.py applies it to real data): a tutor has churned by the period's end when they held no
session in its last ``inactive_after_days`` days and had been onboarded at least that long. Tutor status is not
used: it has no history, so it cannot say whether a tutor had churned by a past ``as_of``.

The population of a period: tutors onboarded by ``as_of`` who held a session in the period or joined in it (a
tutor who joined and never taught churned too). The session figures come from one grouped scan of the period's
sessions (per tutor x subject x weekday, a few thousand rows for 270k sessions); tutors and their latest
predictions are one query each. No query runs per tutor.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Integer, and_, case, cast, extract, func, literal_column, select
from sqlmodel import Session

from domain.feedback.models import StudentFeedback
from domain.interventions import effectiveness as effectiveness_service
from domain.scoring.models import ChurnPrediction, RiskLevel, latest_prediction_days
from domain.sessions.models import TutoringSession
from domain.tutors.models import Tutor

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
AT_RISK = (RiskLevel.high.value, RiskLevel.critical.value)
# Tenure at as_of, in days: [low, high). The first matches the PRD's "new tutor" (< 30 days).
TENURE_COHORTS: tuple[tuple[int, int | None, str], ...] = (
    (0, 30, "Under 30 days"), (30, 90, "30-89 days"), (90, 180, "90-179 days"), (180, 365, "180-364 days"),
    (365, None, "365 days or more"),
)
NEW_TUTOR_DAYS = (30, 60, 90)  # the choices for the new-vs-tenured split; 30 is the PRD's definition
MEASURES = {"churn": "Churn rate", "at_risk": "At-risk share"}
FIRST_SESSION_SUCCESS_RATING = 4  # as on Home: a first session rated 4 or 5 succeeded


@dataclass(frozen=True)
class Period:
    as_of: date
    days: int
    start: datetime
    end: datetime  # exclusive

    @classmethod
    def ending(cls, as_of: date, days: int, *, now: datetime) -> Period:
        day_end = datetime.combine(as_of + timedelta(days=1), time(), tzinfo=UTC)
        end = min(day_end, now)
        return cls(as_of=as_of, days=days, start=day_end - timedelta(days=days), end=end)


@dataclass(frozen=True)
class Thresholds:
    """What the analytics read from the active scoring rules: the inactivity rule and the High risk bound."""

    inactive_after_days: int
    high_above: float  # a 30-day probability x 100 above this is High or Critical (the Medium upper bound)

    @classmethod
    def from_rules(cls, spec: Any) -> Thresholds:  # noqa: ANN401 - rules.scoring.ScoringRuleSet
        return cls(inactive_after_days=int(spec.population.inactive_after_days),
                   high_above=float(spec.risk_levels.Medium))


@dataclass
class Tally:
    """Session counts of one group of rows; rates are None when there is nothing to divide by."""

    sessions: int = 0
    no_shows: int = 0
    reschedules: int = 0
    rated: int = 0
    rating_sum: float = 0.0
    first_rated: int = 0
    first_good: int = 0

    def add(self, other: Tally) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @staticmethod
    def _ratio(part: float, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def no_show_rate(self) -> float | None:
        return self._ratio(self.no_shows, self.sessions)

    @property
    def reschedule_rate(self) -> float | None:
        return self._ratio(self.reschedules, self.sessions)

    @property
    def avg_rating(self) -> float | None:
        return self._ratio(self.rating_sum, self.rated)

    @property
    def first_session_success(self) -> float | None:
        return self._ratio(self.first_good, self.first_rated)


@dataclass
class Cell:
    tutors: int = 0
    churned: int = 0
    at_risk: int = 0

    def share(self, measure: str) -> float | None:
        """Churn rate over every tutor in the cell; at-risk share over those still teaching (not churned)."""
        part, whole = (self.churned, self.tutors) if measure == "churn" else (self.at_risk, self.tutors - self.churned)
        return part / whole if whole else None

    def base(self, measure: str) -> int:
        return self.tutors if measure == "churn" else self.tutors - self.churned


@dataclass
class Heatmap:
    """Both measures' counts per cell; which one a page shades by is the page's choice (MEASURES)."""

    subjects: list[str]
    cells: dict[tuple[str, int], Cell]  # (subject, weekday 0 = Monday)

    def cell(self, subject: str, weekday: int) -> Cell:
        return self.cells.get((subject, weekday), Cell())


@dataclass
class Cohort:
    label: str
    tutors: int = 0
    churned: int = 0
    at_risk: int = 0
    scored: int = 0  # tutors still teaching with a prediction: the mean churn score's base
    score_sum: float = 0.0
    tally: Tally = field(default_factory=Tally)

    @property
    def churn_rate(self) -> float | None:
        return self.churned / self.tutors if self.tutors else None

    @property
    def at_risk_share(self) -> float | None:
        remaining = self.tutors - self.churned
        return self.at_risk / remaining if remaining else None

    @property
    def mean_churn_score(self) -> float | None:
        return self.score_sum / self.scored if self.scored else None

    @property
    def sessions_per_tutor(self) -> float | None:
        return self.tally.sessions / self.tutors if self.tutors else None


@dataclass(frozen=True)
class PredictedChurner:
    tutor_id: str
    name: str
    churn_score: float
    risk_level: str
    probability_30d: float | None  # the churn model's; None when only the rule score exists
    prediction_date: date
    tenure_days: int

    @property
    def basis(self) -> str:
        return "30-day probability" if self.probability_30d is not None else "rule risk level"


@dataclass
class AnalyticsReport:
    period: Period
    subject: str | None
    subjects: list[str]  # every subject known (tutors' lists and the period's sessions): the filter's choices
    thresholds: Thresholds
    population: int
    heatmap: Heatmap
    tenure: list[Cohort]
    new_days: int
    new_vs_tenured: list[Cohort]
    predicted: list[PredictedChurner]
    effectiveness: effectiveness_service.EffectivenessReport


@dataclass
class _TutorFacts:
    onboarded: date
    subjects: list[str]
    by_subject: dict[str, Tally] = field(default_factory=dict)  # the period's sessions
    cells: set[tuple[str, int]] = field(default_factory=set)  # (subject, weekday) taught in the period
    recent: int = 0  # sessions in the inactivity window before the end, any subject
    churned: bool = False
    prediction: Any = None

    def tally(self, subject: str | None) -> Tally:
        if subject is not None:
            return self.by_subject.get(subject, Tally())
        total = Tally()
        for part in self.by_subject.values():
            total.add(part)
        return total

    def in_population(self, period: Period, subject: str | None) -> bool:
        joined_in_period = self.onboarded >= period.start.date()
        if subject is None:
            return bool(self.by_subject) or joined_in_period
        return subject in self.by_subject or (joined_in_period and subject in self.subjects)

    @property
    def at_risk(self) -> bool:
        return not self.churned and self.prediction is not None and self.prediction.risk_level in AT_RISK


def _weekday(db: Session, column: Any) -> Any:  # noqa: ANN401 - a SQL expression
    """Day of week of a UTC timestamp, 0 = Monday. SQLite stores the UTC wall time: the Julian day number modulo 7
    counts from Monday, and is several times cheaper per row than strftime('%w'). PostgreSQL would read a
    timestamptz in the session's zone, so it is converted to UTC first. Constants are inlined, not bound: the
    GROUP BY repeats the expression, and SQLite only recognises it as the same one when its text is identical."""
    if db.get_bind().dialect.name == "postgresql":
        return extract("isodow", func.timezone("UTC", column)) - literal_column("1")
    return cast(func.julianday(column) + literal_column("0.5"), Integer) % literal_column("7")


def _session_groups(db: Session, period: Period) -> list[Any]:
    """The period's sessions in one scan, grouped per subject x weekday x tutor. Plain counts (COUNT of a CASE
    without ELSE counts the rows where it holds) cost half what SUM(CASE ... ELSE 0) does on SQLite."""
    s, f = TutoringSession, StudentFeedback
    # Detailed feedback wins over the quick rating in the session feed (as on Home's KPIs).
    rating = func.coalesce(f.overall_rating, s.student_rating)
    first = s.session_number == 1

    def count(condition: Any) -> Any:  # noqa: ANN401
        return func.count(case((condition, 1)))

    dow = _weekday(db, s.scheduled_start).label("dow")
    stmt = (
        select(s.tutor_id, s.subject, dow, func.count(), count(s.no_show.is_(True)),
               count(s.tutor_initiated_reschedule.is_(True)), func.count(rating), func.sum(rating),
               count(and_(first, rating.is_not(None))), count(and_(first, rating >= FIRST_SESSION_SUCCESS_RATING)))
        .select_from(s).outerjoin(f, f.session_id == s.session_id)
        .where(s.scheduled_start >= period.start, s.scheduled_start < period.end)
        # Subject first: SQLite then scans the table in order instead of fetching every row through the
        # (tutor_id, scheduled_start) index, which measured twice as slow on 270k sessions.
        .group_by(s.subject, dow, s.tutor_id)
    )
    return list(db.execute(stmt))


def _recent_sessions(db: Session, period: Period, inactive_after: int) -> dict[str, int]:
    """Sessions per tutor in the inactivity window before the period's end (it may reach before the period):
    read from the (tutor_id, scheduled_start) index alone."""
    s = TutoringSession
    stmt = (select(s.tutor_id, func.count()).where(s.scheduled_start >= period.end - timedelta(days=inactive_after),
                                                   s.scheduled_start < period.end).group_by(s.tutor_id))
    return {tutor_id: n for tutor_id, n in db.execute(stmt)}


def _latest_predictions(db: Session, as_of: date) -> dict[str, Any]:
    p, latest = ChurnPrediction, latest_prediction_days(as_of)
    stmt = (select(p.tutor_id, p.risk_level, p.churn_score, p.window_30day_probability, p.prediction_date)
            .join(latest, and_(p.tutor_id == latest.c.tutor_id, p.prediction_date == latest.c.day)))
    return {row.tutor_id: row for row in db.execute(stmt)}


def _tutor_facts(db: Session, period: Period, thresholds: Thresholds) -> tuple[dict[str, _TutorFacts], set[str]]:
    """Every tutor onboarded by as_of with the period's session tallies, churn and latest prediction; and the
    subjects the period's sessions were in."""
    tutors = {t: _TutorFacts(onboarded=d, subjects=list(subs or [])) for t, d, subs in db.execute(
        select(Tutor.tutor_id, Tutor.onboarding_date, Tutor.subjects).where(Tutor.onboarding_date <= period.as_of))}
    taught: set[str] = set()
    for tutor_id, subject, dow, n, no_shows, resched, rated, rating_sum, first_rated, first_good in \
            _session_groups(db, period):
        facts = tutors.get(tutor_id)
        if facts is None:  # onboarded after as_of (a backdated session): not in this as_of's population
            continue
        taught.add(subject)
        facts.cells.add((subject, int(dow)))
        facts.by_subject.setdefault(subject, Tally()).add(Tally(
            int(n), int(no_shows), int(resched), int(rated), float(rating_sum or 0), int(first_rated),
            int(first_good)))
    for tutor_id, n in _recent_sessions(db, period, thresholds.inactive_after_days).items():
        if tutor_id in tutors:
            tutors[tutor_id].recent = n
    predictions = _latest_predictions(db, period.as_of)
    for tutor_id, facts in tutors.items():
        tenure = (period.as_of - facts.onboarded).days
        facts.churned = tenure >= thresholds.inactive_after_days and facts.recent == 0
        facts.prediction = predictions.get(tutor_id)
    return tutors, taught


def _heatmap(people: dict[str, _TutorFacts], subjects: list[str]) -> Heatmap:
    cells: dict[tuple[str, int], Cell] = defaultdict(Cell)
    wanted = set(subjects)
    for facts in people.values():
        for key in facts.cells:
            if key[0] not in wanted:
                continue
            cell = cells[key]
            cell.tutors += 1
            cell.churned += facts.churned
            cell.at_risk += facts.at_risk
    shown = sorted({s for s, _ in cells})
    return Heatmap(subjects=shown, cells=dict(cells))


def _cohorts(people: Iterable[tuple[str, _TutorFacts]], labels: list[str], as_of: date, subject: str | None,
             label_of: Any) -> list[Cohort]:  # noqa: ANN401 - a function of tenure days
    out = {label: Cohort(label=label) for label in labels}
    for _tutor_id, facts in people:
        cohort = out[label_of((as_of - facts.onboarded).days)]
        cohort.tutors += 1
        cohort.churned += facts.churned
        cohort.at_risk += facts.at_risk
        if not facts.churned and facts.prediction is not None:
            cohort.scored += 1
            cohort.score_sum += float(facts.prediction.churn_score)
        cohort.tally.add(facts.tally(subject))
    return list(out.values())


def tenure_label(days: int) -> str:
    for low, high, label in TENURE_COHORTS:
        if days >= low and (high is None or days < high):
            return label
    return TENURE_COHORTS[0][2]


def _predicted(db: Session, people: dict[str, _TutorFacts], as_of: date, thresholds: Thresholds
               ) -> list[PredictedChurner]:
    """Tutors not churned whose latest 30-day churn probability is in the High or Critical band (x 100 above
    the Medium bound), or, where the model has not scored them, whose rule risk level is High or Critical."""
    chosen = {}
    for tutor_id, facts in people.items():
        p = facts.prediction
        if facts.churned or p is None:
            continue
        if p.window_30day_probability is not None:
            hit = p.window_30day_probability * 100 > thresholds.high_above
        else:
            hit = p.risk_level in AT_RISK
        if hit:
            chosen[tutor_id] = p
    names: dict[str, str] = {}
    ids = sorted(chosen)
    for start in range(0, len(ids), 500):  # bounded IN lists: SQLite caps bound parameters
        names.update(db.execute(select(Tutor.tutor_id, Tutor.name).where(Tutor.tutor_id.in_(ids[start:start + 500]))).all())
    out = [PredictedChurner(tutor_id=t, name=names.get(t, t), churn_score=float(p.churn_score),
                            risk_level=str(p.risk_level), probability_30d=p.window_30day_probability,
                            prediction_date=p.prediction_date, tenure_days=(as_of - people[t].onboarded).days)
           for t, p in chosen.items()]
    return sorted(out, key=lambda c: (-(c.probability_30d if c.probability_30d is not None else -1),
                                      -c.churn_score, c.tutor_id))


def report(db: Session, *, period: Period, thresholds: Thresholds, effectiveness_window: dict[str, Any],
           subject: str | None = None, new_days: int = NEW_TUTOR_DAYS[0]) -> AnalyticsReport:
    """The whole page's figures. ``effectiveness_window``: impact_window_days and improvement_points from the
    active intervention rules (effectiveness.settings_from_rules)."""
    tutors, taught = _tutor_facts(db, period, thresholds)
    subjects = sorted(taught | {s for f in tutors.values() for s in f.subjects})
    people = {t: f for t, f in tutors.items() if f.in_population(period, subject)}
    split = [f"Under {new_days} days", f"{new_days} days or more"]
    return AnalyticsReport(
        period=period, subject=subject, subjects=subjects, thresholds=thresholds, population=len(people),
        heatmap=_heatmap(people, [subject] if subject else sorted(taught)),
        tenure=_cohorts(people.items(), [label for _, _, label in TENURE_COHORTS], period.as_of, subject,
                        tenure_label),
        new_days=new_days,
        new_vs_tenured=_cohorts(people.items(), split, period.as_of, subject,
                                lambda days: split[0] if days < new_days else split[1]),
        # Not limited to the period's population: a tutor who has not taught lately but has not churned yet is
        # exactly who a 30-day prediction is about. The subject filter applies (taught or listed).
        predicted=_predicted(db, {t: f for t, f in tutors.items()
                                  if subject is None or subject in f.by_subject or subject in f.subjects},
                             period.as_of, thresholds),
        effectiveness=effectiveness_service.effectiveness(db, now=period.end, days=period.days,
                                                          **effectiveness_window),
    )

