"""Rule set administration: seed from the shipped file, drafts, publish, rollback, shadow, and version history.

History is append-only: a published version's content never changes, only its status (active -> retired,
retired <-> shadow). Rolling back writes a new version with the old content, so "what ran when" stays readable.
Every write validates first and happens in the caller's transaction, so a refused publish writes nothing.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.types import utcnow
from domain.audit.models import AuditLog
from domain.rulesets.content import compile_text, normalise, stamp, unified_diff
from domain.rulesets.models import RuleVersion, VersionStatus
from domain.rulesets.shadow import ShadowSummary, record_shadow, shadow_summary
from rules.interventions import CompiledInterventionRules
from rules.loader import RulesError, parse_source

SEED_FILE = "interventions.yaml"  # the shipped intervention rule set (rules/): version 1 of every database
SEED_AUTHOR = "seed"


class RulesetNotFound(LookupError):
    """No such rule set, version or draft (the API answers 404)."""


class RulesetConflict(Exception):
    """The request does not fit the rule set's current state (the API answers 409), e.g. a stale draft."""


@dataclass(frozen=True)
class RulesetSummary:
    ruleset: str
    owner: str
    active: RuleVersion | None
    shadow: RuleVersion | None
    draft: RuleVersion | None
    versions: int  # published versions, the draft not counted


# --- reading --------------------------------------------------------------------------------------------------

def _one(db: Session, ruleset: str, status: VersionStatus) -> RuleVersion | None:
    stmt = select(RuleVersion).where(RuleVersion.ruleset == ruleset, RuleVersion.status == status.value)
    return db.execute(stmt).scalars().first()


def _known(db: Session, ruleset: str) -> None:
    if db.execute(select(RuleVersion.rule_version_id).where(RuleVersion.ruleset == ruleset).limit(1)).first() is None:
        raise RulesetNotFound(f"no rule set {ruleset!r}")


def list_rulesets(db: Session, *, rules_dir: Path) -> list[RulesetSummary]:
    seed(db, rules_dir=rules_dir)
    names = db.execute(select(RuleVersion.ruleset).distinct().order_by(RuleVersion.ruleset)).scalars().all()
    out = []
    for name in names:
        active = _one(db, name, VersionStatus.active)
        owner = parse_source(active.content, active.label).data.get("owner", "") if active else ""
        count = db.execute(select(func.count()).where(RuleVersion.ruleset == name, RuleVersion.version.is_not(None))).scalar_one()
        out.append(RulesetSummary(ruleset=name, owner=str(owner), active=active, shadow=_one(db, name, VersionStatus.shadow),
                                  draft=_one(db, name, VersionStatus.draft), versions=count))
    return out


def list_versions(db: Session, ruleset: str) -> list[RuleVersion]:
    """Published versions, newest first (the draft is read with ``get_draft``)."""
    _known(db, ruleset)
    return list(db.execute(select(RuleVersion).where(RuleVersion.ruleset == ruleset, RuleVersion.version.is_not(None))
                        .order_by(RuleVersion.version.desc())).scalars())


def get_version(db: Session, ruleset: str, version: int) -> RuleVersion:
    row = db.execute(select(RuleVersion).where(RuleVersion.ruleset == ruleset, RuleVersion.version == version)).scalars().first()
    if row is None:
        _known(db, ruleset)
        raise RulesetNotFound(f"rule set {ruleset!r} has no version {version}")
    return row


def get_draft(db: Session, ruleset: str) -> RuleVersion | None:
    _known(db, ruleset)
    return _one(db, ruleset, VersionStatus.draft)


def _required(db: Session, ruleset: str, status: VersionStatus) -> RuleVersion:
    row = _one(db, ruleset, status)
    if row is None:
        _known(db, ruleset)
        raise RulesetNotFound(f"rule set {ruleset!r} has no {status.value} version")
    return row


def get_active(db: Session, ruleset: str) -> RuleVersion:
    return _required(db, ruleset, VersionStatus.active)


def get_shadow(db: Session, ruleset: str) -> RuleVersion:
    return _required(db, ruleset, VersionStatus.shadow)


def _max_version(db: Session, ruleset: str) -> int:
    return db.execute(select(func.coalesce(func.max(RuleVersion.version), 0)).where(RuleVersion.ruleset == ruleset)).scalar_one()


# --- seeding ----------------------------------------------------------------------------------------------------

_seeded: dict[tuple[str, str, int], str] = {}  # (database, file, mtime) -> rule set, checked by this process


def seed(db: Session, *, rules_dir: Path, force: bool = False) -> str:
    """Makes the shipped rule set a stored version; returns its rule set name.

    An empty table gets the file as the active version (author "seed"). Later, a shipped file whose
    ``version:`` is above every stored version (a release that changed the rules) becomes the new active
    version; otherwise the database, where admins edit, stays the source of truth. Checked once per process
    and file unless ``force``: the decide activity calls this on every evaluation.
    """
    path = rules_dir / SEED_FILE
    key = (str(db.get_bind().url), str(path), path.stat().st_mtime_ns)
    if not force and key in _seeded:
        return _seeded[key]
    text = normalise(path.read_text(encoding="utf-8"))
    data = parse_source(text, str(path)).data
    ruleset, version = str(data.get("ruleset")), data.get("version")
    if isinstance(version, int) and version > _max_version(db, ruleset):
        rules = compile_text(text, str(path), ruleset=ruleset)  # a broken shipped file is refused like any other
        previous = _one(db, ruleset, VersionStatus.active)
        label = f"{ruleset}@v{version}"
        try:
            with db.begin_nested():  # another process may be seeding the same database right now
                _retire(db, previous)
                db.add(RuleVersion(
                    ruleset=ruleset, version=version, status=VersionStatus.active.value, content=text, hash=rules.hash,
                    author=SEED_AUTHOR, published_at=utcnow(), changelog=rules.spec.changelog,
                    based_on_version=previous.version if previous else None,
                    diff=unified_diff(previous.content if previous else None, text,
                                      before_label=previous.label if previous else "", after_label=label)))
                db.flush()
        except IntegrityError:
            db.expire_all()  # the other process won; its row is the same file
    _seeded[key] = ruleset
    return ruleset


# --- writing ----------------------------------------------------------------------------------------------------

def _audit(db: Session, *, author: str, row: RuleVersion, event: str, now: datetime, **details: object) -> None:
    db.add(AuditLog(at=now, actor=author, action="write", resource_type="rule_version", resource_id=row.label,
                    source="rules admin", details={"event": event, "hash": row.hash, **details}))


def save_draft(db: Session, ruleset: str, *, content: str, author: str, now: datetime) -> RuleVersion:
    """Creates or replaces the rule set's draft. Raises RulesError (nothing written) when it does not validate."""
    active = get_active(db, ruleset)
    text = normalise(content)
    rules = compile_text(text, f"{ruleset}@draft", ruleset=ruleset)
    draft = _one(db, ruleset, VersionStatus.draft)
    if draft is None:
        draft = RuleVersion(ruleset=ruleset, version=None, status=VersionStatus.draft.value, content=text, hash=rules.hash,
                            author=author, created_at=now)
        db.add(draft)
    # Saving rebases the draft on today's active version: the diff and the stale-draft check start from it.
    draft.content, draft.hash, draft.author, draft.created_at = text, rules.hash, author, now
    draft.changelog, draft.based_on_version = rules.spec.changelog, active.version
    draft.diff = unified_diff(active.content, text, before_label=active.label, after_label=f"{ruleset}@draft")
    db.flush()
    return draft


def discard_draft(db: Session, ruleset: str) -> None:
    draft = get_draft(db, ruleset)
    if draft is None:
        raise RulesetNotFound(f"rule set {ruleset!r} has no draft")
    db.delete(draft)
    db.flush()


def _new_version(db: Session, ruleset: str, source_text: str, *,
                 status: VersionStatus) -> tuple[int, str, CompiledInterventionRules]:
    """The next number, the text stamped with it, and that text validated (RulesError names ruleset@vN)."""
    number = _max_version(db, ruleset) + 1
    label = f"{ruleset}@v{number}"
    text = stamp(source_text, label, version=number, status=status.value)
    return number, text, compile_text(text, label, ruleset=ruleset)


def _retire(db: Session, row: RuleVersion | None) -> None:
    if row is not None:
        row.status = VersionStatus.retired.value
        db.flush()  # before the new row takes the status: the one-per-rule-set index checks every statement


def publish(db: Session, ruleset: str, *, author: str, now: datetime,
            status: VersionStatus = VersionStatus.active) -> RuleVersion:
    """The draft becomes version max+1, either active (the active one retires) or shadow (the shadow one retires).

    Validated again: the code may have changed since the draft was saved. Refused with RulesetConflict when
    the active version moved since the draft was saved (publish or rollback meanwhile): save it again first.
    """
    if status not in (VersionStatus.active, VersionStatus.shadow):
        raise ValueError(f"publish as active or shadow, not {status}")
    draft = get_draft(db, ruleset)
    if draft is None:
        raise RulesetNotFound(f"rule set {ruleset!r} has no draft to publish")
    active = get_active(db, ruleset)
    if draft.based_on_version != active.version:
        raise RulesetConflict(f"the draft was based on v{draft.based_on_version} but v{active.version} is active now; "
                              f"review the diff against v{active.version} and save the draft again before publishing")
    number, text, rules = _new_version(db, ruleset, draft.content, status=status)
    _retire(db, active if status == VersionStatus.active else _one(db, ruleset, VersionStatus.shadow))
    draft.version, draft.status, draft.content, draft.hash = number, status.value, text, rules.hash
    draft.author, draft.published_at, draft.changelog, draft.based_on_version = author, now, rules.spec.changelog, active.version
    draft.diff = unified_diff(active.content, text, before_label=active.label, after_label=draft.label)
    db.flush()
    _audit(db, author=author, row=draft, event=f"publish_{status.value}", now=now, replaced=active.label)
    return draft


def rollback(db: Session, ruleset: str, version: int, *, author: str, now: datetime) -> RuleVersion:
    """A new active version with the content of ``version`` (its own number stamped in); history stays append-only.

    Rolling back to a shadow candidate is how it is promoted; the shadow slot is then cleared.
    """
    source = get_version(db, ruleset, version)
    active = get_active(db, ruleset)
    if source.status == VersionStatus.active.value:
        raise RulesetConflict(f"v{version} is already the active version of {ruleset!r}")
    number, text, rules = _new_version(db, ruleset, source.content, status=VersionStatus.active)
    promoted = source.status == VersionStatus.shadow.value
    _retire(db, active)
    if promoted:
        _retire(db, source)
    row = RuleVersion(ruleset=ruleset, version=number, status=VersionStatus.active.value, content=text, hash=rules.hash,
                      author=author, created_at=now, published_at=now, based_on_version=version,
                      changelog=f"{'Promoted shadow' if promoted else 'Rollback to'} v{version}: {source.changelog}".strip(),
                      diff=unified_diff(active.content, text, before_label=active.label, after_label=f"{ruleset}@v{number}"))
    db.add(row)
    db.flush()
    _audit(db, author=author, row=row, event="rollback", now=now, source=source.label, replaced=active.label)
    return row


def set_shadow(db: Session, ruleset: str, version: int, *, author: str, now: datetime) -> RuleVersion:
    """Runs a retired version beside the active one (replacing any shadow). Validated, since code may have moved."""
    row = get_version(db, ruleset, version)
    if row.status == VersionStatus.active.value:
        raise RulesetConflict(f"v{version} is the active version; shadow runs a candidate beside it")
    if row.status == VersionStatus.shadow.value:
        return row
    compile_text(row.content, row.label, ruleset=ruleset)
    _retire(db, _one(db, ruleset, VersionStatus.shadow))
    row.status = VersionStatus.shadow.value
    db.flush()
    _audit(db, author=author, row=row, event="shadow", now=now)
    return row


def clear_shadow(db: Session, ruleset: str, *, author: str, now: datetime) -> RuleVersion:
    row = get_shadow(db, ruleset)
    _retire(db, row)
    _audit(db, author=author, row=row, event="clear_shadow", now=now)
    return row


# --- running: what the decide activity calls ------------------------------------------------------------------

INTERVENTIONS = "tutor_interventions"  # the rule set the decide activity runs
_COMPILED_MAX = 16
_compiled: OrderedDict[str, CompiledInterventionRules] = OrderedDict()  # by content hash, least recently used first
_compiled_lock = threading.Lock()


def _compiled_for(db: Session, ruleset: str, status: VersionStatus) -> CompiledInterventionRules | None:
    """The compiled rule set of the row with ``status``, from the cache when its hash was compiled before.

    Only (hash, id) is read on a hit: the decide activity calls this per evaluation, and a publish is
    seen by the next call because the row, not a process-level pointer, says which version is active.
    Caching by hash is safe: rules/interventions.py registers each content under a name holding its hash.
    """
    key = db.execute(select(RuleVersion.hash, RuleVersion.rule_version_id)
                     .where(RuleVersion.ruleset == ruleset, RuleVersion.status == status.value)).first()
    if key is None:
        return None
    return _cached(key.hash) or _compile_row(db.get(RuleVersion, key.rule_version_id), ruleset)


def _cached(rules_hash: str) -> CompiledInterventionRules | None:
    with _compiled_lock:
        if rules_hash in _compiled:
            _compiled.move_to_end(rules_hash)
            return _compiled[rules_hash]
    return None


def _compile_row(row: RuleVersion, ruleset: str) -> CompiledInterventionRules:
    rules = compile_text(row.content, row.label, ruleset=ruleset)  # RulesError if today's code refuses it
    if rules.hash != row.hash:
        raise RulesError([f"{row.label}:1: field '(document)': stored hash {row.hash[:12]} "
                          f"does not match its content ({rules.hash[:12]})"])
    with _compiled_lock:
        _compiled[rules.hash] = rules
        while len(_compiled) > _COMPILED_MAX:
            _compiled.popitem(last=False)
    return rules


def active_rules(db: Session, rules_dir: Path, ruleset: str = INTERVENTIONS) -> CompiledInterventionRules:
    """The active version, compiled; seeds the table from ``rules_dir`` on first use."""
    seed(db, rules_dir=rules_dir)
    rules = _compiled_for(db, ruleset, VersionStatus.active)
    if rules is None:
        seed(db, rules_dir=rules_dir, force=True)  # the table was emptied since this process last looked
        rules = _compiled_for(db, ruleset, VersionStatus.active)
    if rules is None:
        raise RulesetNotFound(f"rule set {ruleset!r} has no active version and {rules_dir / SEED_FILE} does not define it")
    return rules


def shadow_rules(db: Session, ruleset: str = INTERVENTIONS) -> CompiledInterventionRules | None:
    """The shadow candidate, compiled, or None when no version is in shadow."""
    return _compiled_for(db, ruleset, VersionStatus.shadow)


def rules_by_hash(db: Session, rules_hash: str, rules_dir: Path, ruleset: str = INTERVENTIONS) -> CompiledInterventionRules:
    """The version a running case was created under, by the hash it recorded: its follow-up (A4's "does the
    pattern continue?") judges by the rules that opened it, not by whatever is active today."""
    rules = _cached(rules_hash)
    if rules is not None:
        return rules
    seed(db, rules_dir=rules_dir)  # a case planned straight from the shipped file, before the store was used
    row = db.execute(select(RuleVersion).where(RuleVersion.ruleset == ruleset, RuleVersion.hash == rules_hash)
                     .limit(1)).scalar_one_or_none()
    if row is None:
        raise RulesetNotFound(f"no stored version of {ruleset!r} has hash {rules_hash[:12]}; was the rule store reset?")
    return _compile_row(row, ruleset)


__all__ = [
    "INTERVENTIONS", "RulesError", "RulesetConflict", "RulesetNotFound", "RulesetSummary", "ShadowSummary", "VersionStatus",
    "active_rules", "clear_shadow", "discard_draft", "get_active", "get_draft", "get_shadow", "get_version", "list_rulesets",
    "list_versions", "publish", "record_shadow", "rollback", "rules_by_hash", "save_draft", "seed", "set_shadow", "shadow_rules",
    "shadow_summary",
]
