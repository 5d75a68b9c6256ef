"""PRD §3.3 pattern detectors: each returns a flag with the moment it triggered and the evidence behind it.

The PRD's count conditions hold as written; each also carries a volume guard from the rules file (a share of the
window's sessions), because a tutor teaching 80 sessions a week meets "any no-show in 14 days" by chance alone.
Setting a guard to 0 in rules/scoring.yaml restores the PRD's bare condition.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.metrics.history import History, in_window
from rules.scoring import ScoringRuleSet

PATTERNS = ("poor_first_session", "high_reschedule", "no_show_risk")


@dataclass(frozen=True)
class Flag:
    name: str
    triggered_at: datetime
    bump: float
    summary: str  # the reason in plain words, as an ops user reads it
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "triggered_at": self.triggered_at.isoformat(), "bump": self.bump,
                "summary": self.summary, "evidence": self.evidence}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def poor_first_session(history: History, *, as_of: datetime, rules: ScoringRuleSet) -> Flag | None:
    p = rules.patterns.poor_first_session
    firsts = [s for s in in_window(history, as_of=as_of, days=p.lookback_days).sessions if s.session_number == 1]
    # A first session the tutor never showed up to is the poorest first experience of all: it counts as poor,
    # as if infinitely late, rather than only diluting the share.
    not_again = p.not_again != "ignore"
    poor = [s for s in firsts if s.no_show or (s.rating is not None and s.rating < p.rating_below)
            or s.late_start_minutes > p.late_start_over_minutes or (not_again and s.not_again)]
    # PRD UI System 3: a student who would not work with the tutor again flags at once, whatever the share.
    said_not_again = p.not_again == "flags_at_once" and any(s.not_again for s in poor)
    if not poor or (len(poor) / len(firsts) <= p.min_share and not said_not_again):
        return None
    return Flag("poor_first_session", poor[0].scheduled_start, p.bump,
                f"{_plural(len(poor), 'poor first session')} of {len(firsts)} in {p.lookback_days} days "
                f"(rated < {p.rating_below:g}, > {p.late_start_over_minutes} min late or missed"
                f"{', or the student would not work with them again' if not_again else ''})",
                {"session_ids": [s.session_id for s in poor], "first_sessions": len(firsts),
                 "ratings": [s.rating for s in poor], "late_minutes": [s.late_start_minutes for s in poor],
                 "not_again": [s.session_id for s in poor if s.not_again]})


def high_reschedule(history: History, *, as_of: datetime, rules: ScoringRuleSet) -> Flag | None:
    p = rules.patterns.high_reschedule
    window = in_window(history, as_of=as_of, days=p.window_days).sessions
    resched = [s for s in window if s.rescheduled]
    rate = len(resched) / len(window) if window else 0.0
    if len(resched) <= p.more_than or rate <= p.min_rate:
        return None
    return Flag("high_reschedule", resched[p.more_than].scheduled_start, p.bump,
                f"{_plural(len(resched), 'tutor-initiated reschedule')} in {p.window_days} days ({rate:.0%} of sessions)",
                {"session_ids": [s.session_id for s in resched], "count": len(resched), "rate": round(rate, 3)})


def login_decline(history: History, *, as_of: datetime, days: int) -> float:
    """Drop in logins over the last half of ``days`` against the half before it (0 when there was nothing before)."""
    half = max(1, days // 2)
    now = len(in_window(history, as_of=as_of, days=half).logins)
    before = len(in_window(history, as_of=as_of, days=half, offset_days=half).logins)
    # Rounded so an exact 30% drop (1 - 14/20 = 0.30000000000000004) does not pass a '> 30%' test.
    return round(1 - now / before, 9) if before else 0.0


def no_show_risk(history: History, *, as_of: datetime, rules: ScoringRuleSet) -> Flag | None:
    p = rules.patterns.no_show_risk
    window = in_window(history, as_of=as_of, days=p.window_days).sessions
    no_shows = [s for s in window if s.no_show]
    rate = len(no_shows) / len(window) if window else 0.0
    decline = login_decline(history, as_of=as_of, days=p.window_days)
    by_count = len(no_shows) > p.no_shows_over and rate > p.min_rate
    by_decline = decline > p.login_decline_over and len(no_shows) > p.missed_over
    if not (by_count or by_decline):
        return None
    logins = f", logins down {decline:.0%}" if decline > 0 else ""
    return Flag("no_show_risk", no_shows[0].scheduled_start, p.bump,
                f"{_plural(len(no_shows), 'no-show')} in {p.window_days} days ({rate:.0%} of sessions){logins}",
                {"session_ids": [s.session_id for s in no_shows], "rate": round(rate, 3),
                 "login_decline": round(decline, 2)})


def detect_patterns(history: History, *, as_of: datetime, rules: ScoringRuleSet) -> list[Flag]:
    found = (poor_first_session(history, as_of=as_of, rules=rules), high_reschedule(history, as_of=as_of, rules=rules),
             no_show_risk(history, as_of=as_of, rules=rules))
    return [f for f in found if f is not None]
