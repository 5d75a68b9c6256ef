"""PRD §3.3 pattern detectors: decisions, trigger times and evidence against SQL over an engine-built world, and
hand-built histories at the exact edges of each count condition and volume guard."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlmodel import Session

from domain.metrics.history import load_history
from domain.scoring.patterns import detect_patterns, high_reschedule, login_decline, no_show_risk, poor_first_session
from rules.scoring import load_scoring_rules
from tests.unit.engine_fixtures import (
    AS_OF, RATED_SESSIONS, RULES, RULES_PATH, WORLD_END, World, daily_logins, fact, history, rows,
    scalar,
)

P = RULES.patterns
# Every midnight of the world's last week, and one instant mid-afternoon.
GRID = [WORLD_END - timedelta(days=k) for k in range(8)] + [WORLD_END - timedelta(days=2, hours=9, minutes=40)]


def _utc(stored: str) -> datetime:
    return datetime.fromisoformat(stored).replace(tzinfo=UTC)


def _reference(w: World, tutor: str, as_of: datetime) -> dict[str, tuple | None]:
    """Each detector's (triggered_at, evidence ids) straight from SQL, or None where it should stay quiet."""
    def window(days: int) -> dict:
        return {"tutor": tutor, "since": as_of - timedelta(days=days), "until": as_of}

    out: dict[str, tuple | None] = {}
    p = window(P.poor_first_session.lookback_days)
    firsts = scalar(w.engine, f"SELECT COUNT(*) FROM ({RATED_SESSIONS}) WHERE session_number = 1", **p)
    poor = rows(w.engine, f"""SELECT session_id, scheduled_start FROM ({RATED_SESSIONS}) WHERE session_number = 1
        AND (no_show OR rating < :below OR late_start_minutes > :late) ORDER BY scheduled_start, session_id""",
                below=P.poor_first_session.rating_below, late=P.poor_first_session.late_start_over_minutes, **p)
    out["poor_first_session"] = (_utc(poor[0][1]), [r[0] for r in poor]) if poor and len(poor) > firsts * (
        P.poor_first_session.min_share) else None

    p = window(P.high_reschedule.window_days)
    total = scalar(w.engine, f"SELECT COUNT(*) FROM ({RATED_SESSIONS})", **p)
    resched = rows(w.engine, f"""SELECT session_id, scheduled_start FROM ({RATED_SESSIONS})
        WHERE tutor_initiated_reschedule = 1 ORDER BY scheduled_start, session_id""", **p)
    more = P.high_reschedule.more_than
    out["high_reschedule"] = (_utc(resched[more][1]), [r[0] for r in resched]) if len(resched) > more and len(
        resched) > total * P.high_reschedule.min_rate else None

    ns = P.no_show_risk
    p = window(ns.window_days)
    total = scalar(w.engine, f"SELECT COUNT(*) FROM ({RATED_SESSIONS})", **p)
    missed = rows(w.engine, f"""SELECT session_id, scheduled_start FROM ({RATED_SESSIONS}) WHERE no_show = 1
        ORDER BY scheduled_start, session_id""", **p)
    logins = """SELECT COUNT(*) FROM tutor_events WHERE tutor_id = :tutor AND event_type = 'login'
        AND event_timestamp >= :since AND event_timestamp < :until"""
    half = timedelta(days=ns.window_days // 2)
    recent = scalar(w.engine, logins, tutor=tutor, since=as_of - half, until=as_of)
    before = scalar(w.engine, logins, tutor=tutor, since=as_of - 2 * half, until=as_of - half)
    declined = before > 0 and recent < before * (1 - ns.login_decline_over)
    fires = (len(missed) > ns.no_shows_over and len(missed) > total * ns.min_rate) or (
        declined and len(missed) > ns.missed_over)
    out["no_show_risk"] = (_utc(missed[0][1]), [r[0] for r in missed]) if fires else None
    return out


def test_detectors_match_sql_over_the_world(world: World) -> None:
    seen: dict[str, set[bool]] = {name: set() for name in ("poor_first_session", "high_reschedule", "no_show_risk")}
    with Session(world.engine) as db:
        for tutor in world.tutor_ids:
            for as_of in GRID:
                # Loaded per as_of: feedback submitted later must not decide an earlier evaluation's flags.
                h = load_history(db, tutor, since=as_of - timedelta(days=RULES.history_days), until=as_of)
                got = {f.name: (f.triggered_at, f.evidence["session_ids"])
                       for f in detect_patterns(h, as_of=as_of, rules=RULES)}
                for name, expected in _reference(world, tutor, as_of).items():
                    assert got.get(name) == expected, f"{name} for {tutor} as of {as_of:%m-%d %H:%M}"
                    seen[name].add(expected is not None)
    # The comparison means something only if each detector both fires and stays quiet somewhere in the world.
    assert seen == {name: {True, False} for name in seen}


def test_flag_shape_and_bumps_come_from_the_rules(world: World) -> None:
    with Session(world.engine) as db:
        flags = [f for t in world.tutor_ids
                 for f in detect_patterns(load_history(db, t, since=WORLD_END - timedelta(days=14), until=WORLD_END),
                                          as_of=WORLD_END, rules=RULES)]
    assert flags
    for f in flags:
        assert f.bump == getattr(P, f.name).bump
        assert WORLD_END - timedelta(days=14) <= f.triggered_at < WORLD_END
        d = f.as_dict()
        assert d["triggered_at"] == f.triggered_at.isoformat() and d["evidence"]["session_ids"] == f.evidence["session_ids"]


# ---- poor first session ---------------------------------------------------------------------------------------


def _firsts(poor: int, total: int, *, first_poor_day: float = 5) -> list:
    """``poor`` first sessions rated 2 (the earliest on ``first_poor_day`` days ago), then good ones."""
    out = [fact(f"poor{i}", days_ago=first_poor_day - i * 0.1, number=1, rating=2) for i in range(poor)]
    return out + [fact(f"good{i}", days_ago=1 + i * 0.01, number=1, rating=5) for i in range(total - poor)]


@pytest.mark.parametrize(("poor", "total", "fires"), [
    (9, 20, False),   # 45% is exactly the share guard
    (10, 20, True),
    (1, 1, True),
    (0, 3, False),
])
def test_poor_first_session_share_guard(poor: int, total: int, fires: bool) -> None:
    flag = poor_first_session(history(*_firsts(poor, total)), as_of=AS_OF, rules=RULES)
    assert (flag is not None) is fires
    if fires:
        assert flag.triggered_at == AS_OF - timedelta(days=5)
        assert flag.evidence["session_ids"] == [f"poor{i}" for i in range(poor)]
        assert flag.evidence["first_sessions"] == total


def _not_again(mode: str):  # noqa: ANN202 - a ScoringRuleSet
    return RULES.model_copy(update={"patterns": P.model_copy(update={
        "poor_first_session": P.poor_first_session.model_copy(update={"not_again": mode})})})


def test_would_not_work_again_is_what_the_rules_say() -> None:
    # 1 of 10 first sessions, rated 4, but the student would not work with the tutor again.
    sessions = [fact("no", days_ago=1, number=1, rating=4, not_again=True)] + _firsts(0, 9)
    assert P.poor_first_session.not_again == "ignore"  # the shipped file
    assert poor_first_session(history(*sessions), as_of=AS_OF, rules=RULES) is None
    alone = history(fact("no", days_ago=1, number=1, rating=4, not_again=True))
    assert poor_first_session(alone, as_of=AS_OF, rules=RULES) is None
    # counts_as_poor: one more poor session, under the 45% share guard.
    assert poor_first_session(history(*sessions), as_of=AS_OF, rules=_not_again("counts_as_poor")) is None
    assert poor_first_session(alone, as_of=AS_OF, rules=_not_again("counts_as_poor")) is not None
    # flags_at_once (PRD UI System 3): whatever the share.
    flag = poor_first_session(history(*sessions), as_of=AS_OF, rules=_not_again("flags_at_once"))
    assert flag is not None and flag.evidence["not_again"] == ["no"] and "would not work with them again" in flag.summary


def test_a_single_poor_first_session_flags() -> None:
    flag = poor_first_session(history(fact(1, days_ago=2, number=1, rating=2.9)), as_of=AS_OF, rules=RULES)
    assert flag is not None and flag.evidence["session_ids"] == ["s1"] and flag.bump == 15
    assert flag.triggered_at == AS_OF - timedelta(days=2)
    assert poor_first_session(history(fact(1, days_ago=2, number=1, rating=3)), as_of=AS_OF, rules=RULES) is None


@pytest.mark.parametrize(("late", "fires"), [(10, False), (11, True)])
def test_poor_first_session_by_lateness(late: int, fires: bool) -> None:
    h = history(fact(1, days_ago=1, number=1, rating=5, late=late))
    assert (poor_first_session(h, as_of=AS_OF, rules=RULES) is not None) is fires


def test_poor_first_session_ignores_repeat_sessions_and_the_lookback_edge() -> None:
    lookback = timedelta(days=P.poor_first_session.lookback_days)
    h = history(fact("repeat", days_ago=1, number=2, rating=1),
                fact("too_old", at=AS_OF - lookback - timedelta(microseconds=1), number=1, rating=1),
                fact("at_edge", at=AS_OF - lookback, number=1, rating=1))
    flag = poor_first_session(h, as_of=AS_OF, rules=RULES)
    assert flag is not None and flag.evidence["session_ids"] == ["at_edge"] and flag.evidence["first_sessions"] == 1


# ---- high reschedule ------------------------------------------------------------------------------------------


def _reschedules(count: int, others: int) -> list:
    resched = [fact(f"r{i}", days_ago=6 - i * 0.5, rescheduled=True) for i in range(count)]
    return resched + [fact(f"o{i}", days_ago=0.5 + i * 0.01) for i in range(others)]


@pytest.mark.parametrize(("count", "others", "fires"), [
    (3, 0, False),    # 100% of sessions, but not more than 3
    (4, 0, True),
    (6, 34, False),   # 6 of 40 is exactly the 15% guard
    (6, 33, True),    # 6 of 39
])
def test_high_reschedule_count_and_rate(count: int, others: int, fires: bool) -> None:
    outside = fact("old", days_ago=P.high_reschedule.window_days + 0.5, rescheduled=True)
    flag = high_reschedule(history(*_reschedules(count, others), outside), as_of=AS_OF, rules=RULES)
    assert (flag is not None) is fires
    if fires:
        # It triggered when the reschedule that made the count exceed 3 happened: the 4th.
        assert flag.triggered_at == AS_OF - timedelta(days=4.5)
        assert flag.evidence["session_ids"] == [f"r{i}" for i in range(count)]
        assert flag.evidence["count"] == count


# ---- no-show risk ---------------------------------------------------------------------------------------------


def _sessions(no_shows: int, total: int) -> list:
    missed = [fact(f"n{i}", days_ago=10 - i, no_show=True) for i in range(no_shows)]
    return missed + [fact(f"h{i}", days_ago=0.2 + i * 0.1) for i in range(total - no_shows)]


@pytest.mark.parametrize(("no_shows", "total", "fires"), [(0, 10, False), (1, 25, False), (1, 24, True), (5, 5, True)])
def test_no_show_count_and_rate(no_shows: int, total: int, fires: bool) -> None:
    h = history(*_sessions(no_shows, total), logins=daily_logins(14))  # steady logins: no decline
    flag = no_show_risk(h, as_of=AS_OF, rules=RULES)
    assert (flag is not None) is fires
    if fires:
        assert flag.triggered_at == AS_OF - timedelta(days=10)
        assert flag.evidence["session_ids"] == [f"n{i}" for i in range(no_shows)]
        assert flag.evidence["login_decline"] == 0


def _declining_logins(before: int, recent: int) -> list[datetime]:
    """``before`` logins in the hours before the 14-day window's midpoint, ``recent`` in the hours before as_of."""
    mid = AS_OF - timedelta(days=P.no_show_risk.window_days // 2)
    return [mid - timedelta(hours=h) for h in range(1, before + 1)] + [
        AS_OF - timedelta(hours=h) for h in range(1, recent + 1)]


@pytest.mark.parametrize(("no_shows", "before", "recent", "fires"), [
    (3, 20, 13, True),    # 3 of 100 is under the rate guard, but logins fell 35% and more than 2 were missed
    (2, 20, 13, False),   # not more than 2 missed
    (3, 20, 15, False),   # logins down 25%
    (3, 0, 0, False),     # nothing to decline from
])
def test_no_show_risk_login_decline_branch(no_shows: int, before: int, recent: int, fires: bool) -> None:
    h = history(*_sessions(no_shows, 100), logins=_declining_logins(before, recent))
    flag = no_show_risk(h, as_of=AS_OF, rules=RULES)
    assert (flag is not None) is fires
    if fires:
        assert flag.evidence["login_decline"] == 0.35 and flag.evidence["rate"] == 0.03
        assert "logins down 35%" in flag.summary


def test_a_login_decline_of_exactly_30_percent_does_not_flag() -> None:
    h = history(*_sessions(3, 100), logins=_declining_logins(20, 14))
    assert login_decline(h, as_of=AS_OF, days=P.no_show_risk.window_days) == pytest.approx(0.30)
    assert no_show_risk(h, as_of=AS_OF, rules=RULES) is None


def test_login_decline_halves_and_edges() -> None:
    h = history(logins=[AS_OF - timedelta(days=14), AS_OF - timedelta(days=7), AS_OF])
    # [as_of-14d, as_of-7d) holds the first login, [as_of-7d, as_of) the second; one at as_of is not yet seen.
    assert login_decline(h, as_of=AS_OF, days=14) == 0
    assert login_decline(history(logins=[AS_OF - timedelta(days=10)]), as_of=AS_OF, days=14) == 1


def test_zero_guards_restore_the_bare_prd_conditions() -> None:
    bare = RULES.model_copy(update={"patterns": P.model_copy(update={
        "no_show_risk": P.no_show_risk.model_copy(update={"min_rate": 0.0}),
        "high_reschedule": P.high_reschedule.model_copy(update={"min_rate": 0.0}),
        "poor_first_session": P.poor_first_session.model_copy(update={"min_share": 0.0})})})
    h = history(*_sessions(1, 100), *_reschedules(4, 0), *_firsts(1, 20), logins=daily_logins(14))
    assert detect_patterns(h, as_of=AS_OF, rules=RULES) == []
    assert [f.name for f in detect_patterns(h, as_of=AS_OF, rules=bare)] == [
        "poor_first_session", "high_reschedule", "no_show_risk"]


def test_changing_the_rules_file_changes_the_flags(world: World, tmp_path: Path) -> None:
    data = yaml.safe_load(RULES_PATH.read_text())
    data["patterns"]["high_reschedule"]["more_than"] = 30
    data["patterns"]["no_show_risk"].update(min_rate=0.5, missed_over=1000)  # both branches
    edited = tmp_path / "scoring.yaml"
    edited.write_text(yaml.safe_dump(data, sort_keys=False))
    strict = load_scoring_rules(edited).spec
    with Session(world.engine) as db:
        histories = [load_history(db, t, since=WORLD_END - timedelta(days=14), until=WORLD_END) for t in world.tutor_ids]
    names = [{f.name for f in detect_patterns(h, as_of=WORLD_END, rules=r)} for r in (RULES, strict) for h in histories]
    shipped, changed = names[:len(histories)], names[len(histories):]
    assert any("high_reschedule" in n for n in shipped) and not any("high_reschedule" in n for n in changed)
    assert any("no_show_risk" in n for n in shipped) and not any("no_show_risk" in n for n in changed)
    assert [n - {"high_reschedule", "no_show_risk"} for n in shipped] == changed


def test_a_missed_first_session_counts_as_poor() -> None:
    # The student's first experience was a tutor who never came: poor, and it no longer just dilutes the share.
    missed = fact("missed", days_ago=3, number=1, no_show=True)
    flag = poor_first_session(history(missed, fact("good", days_ago=2, number=1, rating=5)), as_of=AS_OF, rules=RULES)
    assert flag is not None and flag.evidence["session_ids"] == ["missed"] and flag.evidence["first_sessions"] == 2
