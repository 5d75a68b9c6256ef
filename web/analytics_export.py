"""The analytics figures as downloads: CSV rows (web/export.py writes them) and PDF blocks (web/pdf.py lays them
out). One place decides what each table holds, so the page, the CSV and the PDF show the same numbers.

The CSV stacks the tables one after another, each as a title row, a header row and its rows, with an empty row
between tables; rates are fractions (0.125), so a spreadsheet can format or chart them.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

from domain.dashboard import analytics
from domain.dashboard.service import title_words
from domain.interventions.effectiveness import EffectivenessReport, EffectivenessRow
from web import pdf

TITLE = "TutorPulse analytics"


def type_label(intervention_type: str | None) -> str:
    return title_words(intervention_type) if intervention_type else "All types"


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def summary(found: analytics.AnalyticsReport, measure: str) -> list[tuple[str, object]]:
    p = found.period
    return [
        ("As of", f"{p.as_of.isoformat()} (figures up to {p.end:%Y-%m-%d %H:%M} UTC)"),
        ("Period", f"{p.days} days, from {p.start:%Y-%m-%d}"),
        ("Subject", found.subject or "All subjects"),
        ("Heatmap measure", analytics.MEASURES[measure]),
        ("Tutors in the period", found.population),
        ("Predicted to churn in the next 30 days", len(found.predicted)),
        ("Churned means", f"no session in the last {found.thresholds.inactive_after_days} days of the period"),
    ]


def definitions(found: analytics.AnalyticsReport) -> str:
    days = found.thresholds.inactive_after_days
    return (f"Tutors in the period: onboarded by the as-of day and teaching in the period or joining in it. "
            f"Churn rate: the share of them with no session in the period's last {days} days (tutors onboarded "
            f"under {days} days ago are not counted as churned). At-risk share: among those still teaching, the "
            f"share whose latest churn prediction on or before the as-of day is High or Critical.")


def _cohort_rows(cohorts: Sequence[analytics.Cohort]) -> Iterator[list[object]]:
    for c in cohorts:
        t = c.tally
        yield [c.label, c.tutors, c.churned, _r(c.churn_rate), c.at_risk, _r(c.at_risk_share),
               None if c.mean_churn_score is None else round(c.mean_churn_score, 1), t.sessions,
               None if c.sessions_per_tutor is None else round(c.sessions_per_tutor, 1), _r(t.no_show_rate),
               _r(t.reschedule_rate), None if t.avg_rating is None else round(t.avg_rating, 2),
               _r(t.first_session_success)]


def effectiveness_by_type(rep: EffectivenessReport) -> list[EffectivenessRow]:
    """One row per intervention type over every risk level, its rates recomputed from the summed counts (a
    median time to action cannot be combined from the parts; the mean can, weighted by the actions timed)."""
    out: dict[str, EffectivenessRow] = {}
    for row in rep.rows:
        total = out.setdefault(row.intervention_type or "", EffectivenessRow(
            intervention_type=row.intervention_type, risk_level=None, kinds=[]))
        total.kinds = sorted(set(total.kinds) | set(row.kinds))
        if row.time_to_action_mean_hours is not None:
            timed = total.actions_timed + row.actions_timed
            before = (total.time_to_action_mean_hours or 0) * total.actions_timed
            total.time_to_action_mean_hours = round((before + row.time_to_action_mean_hours * row.actions_timed)
                                                    / timed, 2)
        for name in ("recommended", "acceptance_base", "accepted", "closed", "completed", "impact_measured",
                     "improved", "actions_timed"):
            setattr(total, name, getattr(total, name) + getattr(row, name))
    for total in out.values():
        total.acceptance_rate = _rate(total.accepted, total.acceptance_base)
        total.completion_rate = _rate(total.completed, total.closed)
        total.impact_rate = _rate(total.improved, total.impact_measured)
    return sorted(out.values(), key=lambda r: r.intervention_type or "")


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


COHORT_COLUMNS = ["Cohort", "Tutors", "Churned", "Churn rate", "At risk", "At-risk share", "Mean churn score",
                  "Sessions", "Sessions per tutor", "No-show rate", "Reschedule rate", "Average rating",
                  "First-session success"]
EFFECT_COLUMNS = ["Intervention type", "Risk level", "Recommended", "Accepted", "Acceptance rate", "Closed",
                  "Completed", "Completion rate", "Impact measured", "Improved", "Impact rate",
                  "Median hours to action", "Mean hours to action"]
PREDICTED_COLUMNS = ["Tutor id", "Name", "Risk level", "Churn score", "30-day churn probability", "Basis",
                     "Prediction date", "Tenure days"]


def effect_row(row: EffectivenessRow) -> list[object]:
    return [type_label(row.intervention_type), row.risk_level or "Any", row.recommended, row.accepted,
            row.acceptance_rate, row.closed, row.completed, row.completion_rate, row.impact_measured, row.improved,
            row.impact_rate, row.time_to_action_median_hours, row.time_to_action_mean_hours]


def predicted_row(c: analytics.PredictedChurner) -> list[object]:
    return [c.tutor_id, c.name, c.risk_level, round(c.churn_score, 1), _r(c.probability_30d), c.basis,
            c.prediction_date, c.tenure_days]


def csv_rows(found: analytics.AnalyticsReport, measure: str) -> Iterator[Sequence[object]]:
    yield [TITLE]
    yield from ([k, v] for k, v in summary(found, measure))
    yield []
    yield ["Churn heatmap by subject and weekday"]
    yield ["Subject", "Weekday", "Tutors", "Churned", "Churn rate", "Still teaching", "At risk", "At-risk share"]
    for subject in found.heatmap.subjects:
        for day, name in enumerate(analytics.WEEKDAYS):
            cell = found.heatmap.cell(subject, day)
            yield [subject, name, cell.tutors, cell.churned, _r(cell.share("churn")), cell.base("at_risk"),
                   cell.at_risk, _r(cell.share("at_risk"))]
    yield []
    yield ["Churn by tenure cohort"]
    yield COHORT_COLUMNS
    yield from _cohort_rows(found.tenure)
    yield []
    yield [f"New tutors (under {found.new_days} days) vs tenured"]
    yield COHORT_COLUMNS
    yield from _cohort_rows(found.new_vs_tenured)
    yield []
    yield [f"Intervention effectiveness by type and risk level (cases recommended in the period, all subjects)"]
    yield EFFECT_COLUMNS
    yield from (effect_row(r) for r in found.effectiveness.rows)
    yield []
    yield ["Predicted to churn in the next 30 days"]
    yield PREDICTED_COLUMNS
    yield from (predicted_row(c) for c in found.predicted)


def _heatmap_table(found: analytics.AnalyticsReport, measure: str) -> pdf.Table:
    rows = []
    for subject in found.heatmap.subjects:
        row: list[object] = [subject]
        for day in range(7):
            cell = found.heatmap.cell(subject, day)
            share = cell.share(measure)
            row.append("—" if share is None else f"{share:.0%} of {cell.base(measure)}")
        rows.append(row)
    return pdf.Table(["Subject", *analytics.WEEKDAYS], rows, caption=f"{analytics.MEASURES[measure]} "
                     "(share of the tutors who taught the subject on that weekday)", numeric=range(1, 8))


def _cohort_table(cohorts: Sequence[analytics.Cohort], caption: str) -> pdf.Table:
    rows = [[c.label, c.tutors, f"{_pct(c.churn_rate)} ({c.churned})", f"{_pct(c.at_risk_share)} ({c.at_risk})",
             None if c.mean_churn_score is None else round(c.mean_churn_score, 1), c.tally.sessions,
             _pct(c.tally.no_show_rate), None if c.tally.avg_rating is None else round(c.tally.avg_rating, 2),
             _pct(c.tally.first_session_success)] for c in cohorts]
    return pdf.Table(["Cohort", "Tutors", "Churn rate", "At-risk share", "Mean score", "Sessions", "No-show rate",
                      "Avg rating", "First-session success"], rows, caption=caption, numeric=range(1, 9))


def pdf_blocks(found: analytics.AnalyticsReport, measure: str) -> tuple[str, str, list[pdf.Block]]:
    p = found.period
    subtitle = f"As of {p.as_of.isoformat()}, last {p.days} days, {found.subject or 'all subjects'}"
    by_type = effectiveness_by_type(found.effectiveness)
    effect_rows = [[type_label(r.intervention_type), r.risk_level or "Any", r.recommended, _pct(r.acceptance_rate),
                    _pct(r.completion_rate), _pct(r.impact_rate), r.time_to_action_median_hours]
                   for r in found.effectiveness.rows]
    blocks: list[pdf.Block] = [
        pdf.KeyValues(summary(found, measure)),
        pdf.Paragraph(definitions(found), small=True),
        pdf.Heading("Churn heatmap: subject and weekday"),
        _heatmap_table(found, measure),
        pdf.Heading("Churn by tenure cohort"),
        pdf.BarChart("Churn rate and at-risk share by tenure", [c.label for c in found.tenure],
                     {"Churn rate": [c.churn_rate for c in found.tenure],
                      "At-risk share": [c.at_risk_share for c in found.tenure]}, percent=True),
        _cohort_table(found.tenure, "Tenure at the as-of day"),
        pdf.Heading(f"New tutors (under {found.new_days} days) vs tenured"),
        _cohort_table(found.new_vs_tenured, "Cohorts by tenure at the as-of day"),
        pdf.Heading("Intervention effectiveness"),
        pdf.Paragraph("Cases recommended in the period, all subjects (PRD 4.4 definitions; targets: acceptance "
                      "over 70%, completion over 85%, impact over 60%).", small=True),
        pdf.BarChart("Rates by intervention type", [type_label(r.intervention_type) for r in by_type],
                     {"Acceptance": [r.acceptance_rate for r in by_type],
                      "Completion": [r.completion_rate for r in by_type],
                      "Impact": [r.impact_rate for r in by_type]}, percent=True),
        pdf.Table(["Type", "Risk level", "Recommended", "Acceptance", "Completion", "Impact", "Median hours"],
                  effect_rows, caption="By type and risk level", numeric=range(2, 7)),
        pdf.Heading(f"Predicted to churn in the next 30 days: {len(found.predicted)} tutors"),
        pdf.Table(["Tutor", "Risk level", "Churn score", "30-day probability", "Tenure days"],
                  [[f"{c.name} ({c.tutor_id})", c.risk_level, round(c.churn_score, 1),
                    _pct(c.probability_30d) if c.probability_30d is not None else "no model score", c.tenure_days]
                   for c in found.predicted], numeric=(2, 3, 4)),
    ]
    return TITLE, subtitle, blocks
