"""Student comments whose tone follows the rating they accompany.

Each star band has its own phrase bank; a comment is built only from its band's bank (plus neutral
context remarks worded for that band), so a 1-2 star comment can never read as praise. The free text is
what a text model would learn from, so a mismatch here would teach it the wrong thing.
"""
from __future__ import annotations

import math

OPENERS: dict[int, tuple[str, ...]] = {
    5: ("Great session, very helpful!", "Excellent tutor, explained everything clearly.",
        "Amazing session, I finally understand {subject}.", "Best tutoring session I've had.",
        "Super patient and really knows {subject}.", "Fantastic, I feel ready for my test."),
    4: ("Good session, I learned a lot.", "Helpful session overall.", "Clear explanations of {subject}.",
        "Nice session, the practice problems helped.", "Solid session, tutor was friendly."),
    3: ("Session was okay.", "It was fine, some parts were confusing.", "Average session.",
        "Some of the {subject} explanations helped, others didn't.", "Okay, but we went a bit fast."),
    2: ("Not very helpful.", "I was still confused about {subject} afterwards.",
        "The explanations were hard to follow.", "Disappointing session.",
        "We didn't get through what I needed."),
    1: ("Very unhelpful session.", "Waste of time.", "I did not learn anything about {subject}.",
        "Tutor seemed distracted and unprepared.", "Terrible session, I want a different tutor."),
}

# Context remarks per band: a late start stings more in a bad session than in a good one.
LATE: dict[int, str] = {
    5: "Started a little late but made up for it.", 4: "Started a bit late.",
    3: "Tutor was late to start.", 2: "Tutor showed up late.", 1: "Tutor was very late.",
}
TECHNICAL: dict[int, str] = {
    5: "Small connection hiccup, no big deal.", 4: "Had some audio issues.",
    3: "Video kept freezing.", 2: "Constant technical problems.", 1: "The connection kept dropping the whole time.",
}
FIRST: dict[int, str] = {
    5: "Can't wait for the next one!", 4: "Looking forward to the next session.",
    3: "Not sure yet if I'll book again.", 2: "Probably won't book again.", 1: "Won't be booking again.",
}

IMPROVEMENT_AREAS = ("Tutor was late", "Tutor seemed unprepared", "Didn't explain things clearly",
                     "Wasn't patient or encouraging", "Technical issues")


def band(rating: float) -> int:
    """The 1-5 star band a (possibly fractional) rating falls in; halves round up, as students read stars."""
    return max(1, min(5, math.floor(rating + 0.5)))


def comment(rating: float, pick: int, *, subject: str, late: bool = False, technical: bool = False,
            first_session: bool = False) -> str:
    """A short comment in the tone of ``rating``; ``pick`` (any non-negative int) chooses the wording."""
    b = band(rating)
    bank = OPENERS[b]
    parts = [bank[pick % len(bank)].format(subject=subject)]
    if late:
        parts.append(LATE[b])
    if technical:
        parts.append(TECHNICAL[b])
    if first_session and (pick // len(bank)) % 2 == 0:
        parts.append(FIRST[b])
    return " ".join(parts)[:500]


def improvement_areas(pick: int, *, late: bool, technical: bool) -> list[str]:
    """What a student flags after a poor first session: what actually went wrong, plus one or two general."""
    areas = []
    if late:
        areas.append(IMPROVEMENT_AREAS[0])
    if technical:
        areas.append(IMPROVEMENT_AREAS[4])
    general = IMPROVEMENT_AREAS[1:4]
    areas.append(general[pick % 3])
    if (pick // 3) % 2:
        areas.append(general[(pick + 1) % 3])
    return areas
