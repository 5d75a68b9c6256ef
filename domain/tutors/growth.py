"""Feedback & Growth for the tutor portal: the rating breakdown by dimension, the training it points to, and the
resources library.

The breakdown is computed only from the feedback the tutor is already shown (the weeks domain.feedback.anonymise
did not suppress), so it can never reveal anything about a suppressed week. The training modules and guides are
data here, described in full on the Resources page: there is no training platform to link to, so the page itself
carries what each module teaches.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from domain.feedback.anonymise import DIMENSIONS, K_MIN_STUDENTS, FeedbackWeek

# A dimension averaging at least this is a strength: no training is suggested for it.
STRONG_ENOUGH = 4.5
# Dimensions within this of the weakest one count as weakest too (two near-equal scores are one signal).
TIE_MARGIN = 0.1
MAX_RECOMMENDED = 2
# A dimension rated fewer times than this is not ranked: one or two ratings say little about a skill.
MIN_DIMENSION_RATINGS = K_MIN_STUDENTS
GOAL_STEP = 0.2  # the suggested goal: the weakest average raised by this much, rounded up to one decimal

DIMENSION_LABELS = {"subject_knowledge": "Subject knowledge", "communication": "Communication",
                    "patience": "Patience", "engagement": "Engagement", "helpfulness": "Helpfulness"}


@dataclass(frozen=True)
class TrainingModule:
    key: str  # the anchor on the Resources page; the keys shared with rules/scoring.yaml's modules match them
    title: str
    minutes: int
    skill_area: str
    summary: str
    covers: tuple[str, ...]


@dataclass(frozen=True)
class Guide:
    key: str
    title: str
    points: tuple[str, ...]


@dataclass(frozen=True)
class DimensionScore:
    dimension: str
    label: str
    average: float | None
    ratings: int


@dataclass(frozen=True)
class Recommendation:
    module: TrainingModule
    because: DimensionScore
    goal: float  # the suggested next average for that dimension


MODULES: tuple[TrainingModule, ...] = (
    TrainingModule("worked_examples", "Explaining with worked examples", 20, "Subject knowledge",
                   "Turning what you know into steps a student can follow.",
                   ("Choosing one example that shows the whole idea", "Thinking aloud through each step",
                    "Letting the student solve the next example while you watch")),
    TrainingModule("clear_explanations", "Clear explanations and checking understanding", 15, "Communication",
                   "Short explanations, plain words, and finding out what landed.",
                   ("Explaining one idea at a time", "Asking the student to explain it back",
                    "Spotting confusion before the student says so")),
    TrainingModule("patience_and_feedback", "Patience and encouraging feedback", 15, "Patience",
                   "Giving students room to think and feedback that keeps them going.",
                   ("Waiting a few seconds longer after a question", "Praising the method, not only the answer",
                    "Turning a mistake into the next step")),
    TrainingModule("engaging_online_students", "Advanced engagement techniques", 15, "Engagement",
                   "Keeping a student active for the whole online session.",
                   ("Getting the student talking within the first two minutes",
                    "Switching activity every ten to fifteen minutes", "Using the shared screen for the student's work")),
    TrainingModule("goal_setting", "Setting goals students can reach", 15, "Helpfulness",
                   "Making every session move the student towards something they care about.",
                   ("Asking what the student needs this week", "Agreeing one goal at the start",
                    "Closing with what to practise before next time")),
    TrainingModule("first_session_excellence", "First session excellence", 20, "First sessions",
                   "A first session that makes a new student want a second one.",
                   ("Reading the student's goals and level before the session", "A short warm-up activity",
                    "Agreeing a goal for the next session")),
    TrainingModule("scheduling_and_reliability", "Scheduling and reliability", 10, "Reliability",
                   "Keeping the times you offer, so students can plan around you.",
                   ("Offering only times you can keep", "Joining five minutes early",
                    "Giving notice early when a change cannot be avoided")),
)
MODULES_BY_KEY = {m.key: m for m in MODULES}
# Which module helps with which feedback dimension (the weakest dimension's module is the recommendation).
TRAINING_FOR_DIMENSION: dict[str, str] = {
    "subject_knowledge": "worked_examples", "communication": "clear_explanations",
    "patience": "patience_and_feedback", "engagement": "engaging_online_students", "helpfulness": "goal_setting",
}

GUIDES: tuple[Guide, ...] = (
    Guide("start-on-time", "Start on time", (
        "Aim to start within two minutes of the scheduled time: a punctual start sets the tone for the session.",
        "Join five minutes early to test audio and screen sharing before the student arrives.")),
    Guide("first-session", "Your first session with a new student", (
        "Read the student's goals and level in the booking beforehand.",
        "Prepare one short warm-up activity and one example in the subject.",
        "Close by agreeing on a goal for the next session.")),
    Guide("close-well", "Closing a session well", (
        "Leave the last five minutes for a recap in the student's own words.",
        "Name one thing the student did well and one thing to practise.")),
    Guide("technical-issues", "When technology gets in the way", (
        "Keep a second way to share work ready, such as a photo of handwritten steps.",
        "If a session loses more than a few minutes, offer to make the time up.")),
)


def dimension_breakdown(weeks: Sequence[FeedbackWeek]) -> list[DimensionScore]:
    """Average of each dimension over the items of the weeks shown (suppressed weeks carry no items)."""
    out = []
    for d in DIMENSIONS:
        values = [v for w in weeks for item in w.items if (v := item.dimensions.get(d)) is not None]
        average = round(sum(values) / len(values), 2) if values else None
        out.append(DimensionScore(dimension=d, label=DIMENSION_LABELS[d], average=average, ratings=len(values)))
    return out


def weakest(breakdown: Sequence[DimensionScore]) -> list[DimensionScore]:
    """The lowest-rated dimension(s) below STRONG_ENOUGH, ties within TIE_MARGIN, at most MAX_RECOMMENDED."""
    ranked = sorted((s for s in breakdown if s.average is not None and s.ratings >= MIN_DIMENSION_RATINGS
                     and s.average < STRONG_ENOUGH), key=lambda s: (s.average, s.dimension))
    if not ranked:
        return []
    low = ranked[0].average or 0.0
    return [s for s in ranked if (s.average or 0.0) - low <= TIE_MARGIN][:MAX_RECOMMENDED]


def goal_for(average: float) -> float:
    return min(5.0, math.ceil((average + GOAL_STEP) * 10 - 1e-9) / 10)


def recommendations(breakdown: Sequence[DimensionScore]) -> list[Recommendation]:
    return [Recommendation(module=MODULES_BY_KEY[TRAINING_FOR_DIMENSION[s.dimension]], because=s,
                           goal=goal_for(s.average or 0.0)) for s in weakest(breakdown)]


def modules_by_skill() -> list[tuple[str, list[TrainingModule]]]:
    areas: dict[str, list[TrainingModule]] = {}
    for m in MODULES:
        areas.setdefault(m.skill_area, []).append(m)
    return list(areas.items())
