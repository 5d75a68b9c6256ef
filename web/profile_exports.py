"""The tutor profile as downloads: a PDF report (web.pdf) of what the page shows, and CSV files (web.export) of the
tutor's whole intervention history and feedback. Built from the same TutorProfile the page renders, so a download
and the page agree; student names and ids are left out of both, as on the page.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from domain.dashboard.profile import DIMENSIONS, FeedbackView, TutorProfile
from domain.interventions.queries import CaseView
from rules.scoring import Thresholds
from web import pdf

INTERVENTION_COLUMNS = (
    "intervention_id", "recommended_date", "intervention_type", "title", "kind", "step", "parent_id", "status",
    "outcome", "risk_level", "churn_score", "owner_role", "assigned_to", "due_date", "escalated_at", "completed_date",
    "opened_at", "responded_at", "follow_up_result", "trigger_reason", "rules_version",
)
FEEDBACK_COLUMNS = ("feedback_id", "submitted_at", "session_date", "subject", "first_session", "overall_rating",
                    *(name.removesuffix("_rating") for name, _ in DIMENSIONS), "would_recommend",
                    "improvement_areas", "comment")


# --- CSV ---------------------------------------------------------------------------------------------------

def intervention_rows(cases: Sequence[CaseView]) -> Iterator[Sequence[object]]:
    yield INTERVENTION_COLUMNS
    for case in cases:
        row = case.intervention
        yield [getattr(row, column) for column in INTERVENTION_COLUMNS]


def feedback_rows(items: Sequence[FeedbackView]) -> Iterator[Sequence[object]]:
    yield FEEDBACK_COLUMNS
    for f in items:
        given = dict(f.dimensions)
        yield [f.feedback_id, f.submitted_at, f.session_date, f.subject, f.first_session, f.overall_rating,
               *(given.get(label) for _, label in DIMENSIONS), f.would_recommend, "; ".join(f.improvement_areas),
               f.comment]


# --- PDF ---------------------------------------------------------------------------------------------------

def _day(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d") if value else None


def _risk(p: TutorProfile) -> list[pdf.Block]:
    s = p.score
    if s is None:
        return [pdf.Heading("Risk"), pdf.Paragraph("Not evaluated yet: there is no churn prediction for this tutor.")]
    facts: list[tuple[str, object]] = [
        ("Churn score (rules)", f"{s.prediction.churn_score:.0f} ({s.prediction.risk_level}), "
                                f"prediction of {s.prediction.prediction_date.isoformat()}")]
    if s.model:
        facts.append(("Churn score (model)", f"{s.model['churn_score']:.0f} ({s.model['risk_level']}), "
                                             f"{s.model['ml_model_version']}"))
        facts.append(("Probability by horizon", ", ".join(
            f"{days}-day {s.model[f'window_{days}day_probability']:.0%}" for days in (1, 7, 30, 90))))
    facts.append(("Interventions decided on", f"the {p.drives_interventions} score"))
    blocks: list[pdf.Block] = [pdf.Heading("Risk"), pdf.KeyValues(facts)]
    reasons = [line[:1].upper() + line[1:] + " (rules)" for line in s.explanation[:3]]
    reasons += [f"{f['text']} (model)" for f in (s.model or {}).get("factors", [])]
    if reasons:
        blocks += [pdf.Heading("Top factors", 2), pdf.Paragraph("\n".join(f"• {r}" for r in reasons))]
    blocks.append(pdf.Heading("Active flags", 2))
    if p.flags:
        blocks.append(pdf.Table(["Flag", "Summary", "Triggered", "Points"],
                                [[f.name.replace("_", " ").capitalize(), f.summary, _day(f.triggered_at), f.bump]
                                 for f in p.flags], numeric=[3]))
    else:
        blocks.append(pdf.Paragraph("No pattern flag is active."))
    return blocks


def _history(p: TutorProfile, thresholds: Thresholds) -> list[pdf.Block]:
    blocks: list[pdf.Block] = [pdf.Heading("Metrics, last 30 days")]
    if p.metrics:
        status = {True: "below threshold", False: "within threshold", None: "—"}
        blocks.append(pdf.Table(["Metric", "Value", "Detail", "Threshold", "Status"],
                                [[m.label, m.value, m.detail, m.target, status[m.below]] for m in p.metrics]))
    else:
        blocks.append(pdf.Paragraph("No 30-day metrics yet."))
    if p.weeks:
        labels = [f"{w.end:%d %b}" for w in p.weeks]
        blocks += [
            pdf.Heading("Performance history, weekly", 2),
            pdf.LineChart("Average rating", labels, {
                "Average rating": [w.avg_rating for w in p.weeks],
                f"Threshold {thresholds.avg_rating_min:g}": [thresholds.avg_rating_min] * len(p.weeks)}),
            pdf.BarChart("Sessions", labels, {
                "Completed": [w.sessions_completed for w in p.weeks],
                "Rescheduled by the tutor": [w.reschedules for w in p.weeks],
                "No-shows": [w.no_shows for w in p.weeks]}),
            pdf.LineChart("Reschedule rate", labels, {
                "Reschedule rate": [w.reschedule_rate for w in p.weeks],
                f"Threshold {thresholds.reschedule_rate_max:.0%}": [thresholds.reschedule_rate_max] * len(p.weeks)},
                percent=True),
            pdf.Table(["Week ending", "Completed", "Rescheduled", "No-shows", "Average rating", "Reschedule rate"],
                      [[w.end, w.sessions_completed, w.reschedules, w.no_shows,
                        None if w.avg_rating is None else round(w.avg_rating, 2),
                        None if w.reschedule_rate is None else f"{w.reschedule_rate:.1%}"] for w in p.weeks],
                      numeric=[1, 2, 3, 4, 5]),
        ]
    return blocks


def _records(p: TutorProfile) -> list[pdf.Block]:
    blocks: list[pdf.Block] = [pdf.Heading(f"Intervention history ({p.cases_total})")]
    if p.cases:
        blocks.append(pdf.Table(["Recommended", "Intervention", "Status", "Outcome", "Owner"], [
            [_day(c.intervention.recommended_date), c.intervention.title or c.intervention.intervention_type,
             c.intervention.status, c.intervention.outcome, c.intervention.assigned_to or c.intervention.owner_role]
            for c in p.cases]))
    blocks.append(pdf.Heading(f"Recent student feedback ({p.feedback_total})"))
    if p.feedback:
        blocks.append(pdf.Table(["Submitted", "Subject", "Rating", "Dimensions", "Comment"], [
            [_day(f.submitted_at), f.subject + (" (first session)" if f.first_session else ""),
             f"{f.overall_rating}/5", ", ".join(f"{label} {value}/5" for label, value in f.dimensions), f.comment]
            for f in p.feedback], numeric=[2]))
    blocks.append(pdf.Heading(f"Communication log ({p.messages_total})"))
    if p.messages:
        blocks.append(pdf.Table(["Written", "To", "Subject", "Status", "Opened"], [
            [_day(m.created_at), m.recipient_role or f"tutor ({m.channel})", m.subject, m.status,
             "yes" if m.opened_at else "no"] for m in p.messages]))
    blocks.append(pdf.Heading(f"Manager notes ({p.notes_total})"))
    if p.notes:
        blocks.append(pdf.Table(["Written", "By", "Note"], [
            [_day(n.note.created_at), n.author_name, n.note.body] for n in p.notes]))
    return blocks


def report(p: TutorProfile, thresholds: Thresholds, *, now: datetime) -> bytes:
    t = p.tutor
    facts = [("Status", t.status), ("Performance tier", (p.score.tier if p.score else None) or "not ranked yet"),
             ("Tenure", f"{p.tenure_days} days (since {t.onboarding_date.isoformat()})"),
             ("Subjects", ", ".join(t.subjects) or "none recorded")]
    blocks: list[pdf.Block] = [pdf.KeyValues(facts), *_risk(p), *_history(p, thresholds), *_records(p)]
    return pdf.build(f"Tutor profile: {t.name} (#{t.tutor_id})", blocks,
                     subtitle=f"as of {now:%Y-%m-%d %H:%M} UTC · staff only: churn risk and student feedback")
