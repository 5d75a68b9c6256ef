"""The intervention rule set: schema, compilation to durable-rules, golden tests, and evaluation."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rules.engine import DurableRulesEvaluator, Evaluator
from rules.loader import RulesError, RulesSource, content_hash, read_source, validate_model

Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in"]
_DURABLE_OPS = {"ne": "$neq", "gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte"}
_NUMERIC_OPS = {"gt", "gte", "lt", "lte"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSpec(_Strict):
    type: Literal["number", "string", "boolean"]
    enum: list[str] | None = None


Role = Literal["ops_manager", "people_ops", "admin"]


class Condition(_Strict):
    field: str
    op: Op
    value: Any


class Cap(_Strict):
    """At most ``max`` cases of a type started per tutor in any ``days``-day span (A1: 1 per 7 days)."""

    max: int = Field(ge=1, le=100)
    days: int = Field(ge=1, le=365)


class Escalation(_Strict):
    """The human task a follow-up opens when its condition still holds (A4: manager review after 14 days)."""

    title: str = Field(min_length=1)
    owner_role: Role
    sla_hours: float = Field(gt=0)


class FollowUp(_Strict):
    kind: Literal["check_training", "escalate_if"]
    after_days: float = Field(gt=0)
    when: list[Condition] = Field(default_factory=list)  # escalate_if: checked on the tutor's latest facts
    escalation: Escalation | None = None

    @model_validator(mode="after")
    def _escalate_needs_condition(self) -> FollowUp:
        if self.kind == "escalate_if" and (not self.when or self.escalation is None):
            raise ValueError("an escalate_if follow-up needs `when` conditions and an `escalation`")
        return self


class InterventionSpec(_Strict):
    kind: Literal["automated", "human", "program"]
    title: str = Field(min_length=1)
    cap: Cap
    per: Literal["tutor", "first_session"] = "tutor"  # A3: one case per held first session
    cancel_if_unmatched: bool = False  # a later evaluation that no longer asks for it cancels the open case
    # Automated: the message, when it goes out, how long the tutor's response is tracked, the follow-up.
    message_subject: str | None = None
    message_body: str | None = None
    channels: list[Literal["in_app", "email"]] = Field(default_factory=lambda: ["in_app", "email"], min_length=1)
    send_delay_hours: float = Field(default=0, ge=0)
    track_days: float = Field(default=7, gt=0)
    follow_up: FollowUp | None = None
    # Human tasks and programs: who works it, by when, who it escalates to, whether a manager approves first.
    owner_role: Role | None = None
    sla_hours: float | None = Field(default=None, gt=0)
    reminder_before_hours: float | None = Field(default=None, gt=0)
    escalate_to_role: Role | None = None
    requires_approval: bool = False
    approver_role: Role = "ops_manager"
    # Programs (H2 mentoring, H3 PIP): a kickoff task, optional check-ins, an outcome review at the end.
    duration_days: float | None = Field(default=None, gt=0)
    max_duration_days: float | None = Field(default=None, gt=0)
    checkin_every_days: float | None = Field(default=None, gt=0)
    checkin_sla_hours: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _complete_for_kind(self) -> InterventionSpec:
        if self.kind == "automated" and not self.message_subject:
            raise ValueError("an automated intervention needs message_subject")
        if self.kind in ("human", "program") and (self.owner_role is None or self.sla_hours is None):
            raise ValueError(f"a {self.kind} intervention needs owner_role and sla_hours")
        if self.reminder_before_hours is not None and (self.sla_hours is None or self.reminder_before_hours >= self.sla_hours):
            raise ValueError("reminder_before_hours must be shorter than sla_hours")
        if self.kind == "program":
            if self.duration_days is None:
                raise ValueError("a program needs duration_days")
            if self.max_duration_days is not None and self.max_duration_days < self.duration_days:
                raise ValueError("max_duration_days must be at least duration_days")
            if self.checkin_every_days is not None and self.checkin_sla_hours is None:
                raise ValueError("check-ins need checkin_sla_hours")
        return self


class Effectiveness(_Strict):
    """PRD §4.4 impact: the tutor's churn score fell by ``improvement_points`` within ``impact_window_days``."""

    impact_window_days: int = Field(default=30, ge=1, le=365)
    improvement_points: float = Field(default=5, ge=0, le=100)


class GoldenTest(_Strict):
    given: dict[str, Any]
    expect: list[str]


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,60}$")
    priority: int = Field(default=5, ge=1, le=10)
    mode: Literal["fact", "event"] = "fact"
    when: list[Condition] = Field(min_length=1)
    then: list[str] = Field(min_length=1)
    tests: list[GoldenTest] = Field(default_factory=list)


class InterventionRuleSet(_Strict):
    ruleset: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    version: int = Field(ge=1)
    status: Literal["draft", "shadow", "active", "retired"]
    owner: str
    changelog: str = ""
    inputs: dict[str, InputSpec]
    interventions: dict[str, InterventionSpec]
    effectiveness: Effectiveness = Field(default_factory=Effectiveness)
    rules: list[Rule] = Field(min_length=1)


@dataclass(frozen=True)
class CompiledInterventionRules:
    spec: InterventionRuleSet
    hash: str
    engine_name: str  # the durable-rules ruleset name for this exact content
    compiled: dict[str, Any]

    @property
    def version_label(self) -> str:
        return f"{self.spec.ruleset}@v{self.spec.version}"

    def _inputs(self, facts: dict[str, Any]) -> dict[str, Any]:
        # Only declared inputs reach the engine: a tutor's facts also carry lists and labels it cannot match on.
        return {k: v for k, v in facts.items() if k in self.spec.inputs}

    def evaluate(self, facts: dict[str, Any], evaluator: Evaluator = DurableRulesEvaluator) -> tuple[list[str], list[str]]:
        """Returns (matched rule ids, intervention types) for one tutor's facts; types deduplicated in order."""
        fired: list[str] = []
        inputs = self._inputs(facts)
        for mode in ("fact", "event"):
            if any(r.mode == mode for r in self.spec.rules):
                fired += evaluator.evaluate(f"{self.engine_name}_{mode}", inputs, mode)
        by_id = {r.id: r for r in self.spec.rules}
        matched = sorted(set(fired), key=lambda rid: (by_id[rid].priority, rid))
        actions = list(dict.fromkeys(a for rid in matched for a in by_id[rid].then))
        return matched, actions

    def follow_up_holds(self, intervention_type: str, facts: dict[str, Any],
                        evaluator: Evaluator = DurableRulesEvaluator) -> bool:
        """Whether an escalate_if follow-up's conditions hold on ``facts`` (A4: the pattern continued)."""
        if _follow_up_rule(intervention_type) not in self.compiled.get("followup", {}):
            raise KeyError(f"{intervention_type} has no escalate_if follow-up in {self.version_label}")
        fired = evaluator.evaluate(f"{self.engine_name}_followup", self._inputs(facts), "fact")
        return _follow_up_rule(intervention_type) in fired

    def rules_for(self, intervention_type: str, matched: list[str]) -> list[str]:
        then = {r.id: r.then for r in self.spec.rules}
        return [rid for rid in matched if intervention_type in then[rid]]


def _follow_up_rule(intervention_type: str) -> str:
    return f"followup_{intervention_type.lower()}"


def _check_conditions(spec: InterventionRuleSet, source: RulesSource, conditions: list[Condition], loc: tuple) -> list[str]:
    problems = []
    for j, cond in enumerate(conditions):
        at = (*loc, j)
        spec_in = spec.inputs.get(cond.field)
        if spec_in is None:
            problems.append(source.problem((*at, "field"), f"unknown input {cond.field!r}; declare it under inputs"))
            continue
        values = cond.value if cond.op == "in" else [cond.value]
        if cond.op == "in" and not isinstance(cond.value, list):
            problems.append(source.problem((*at, "value"), "op 'in' takes a list"))
            continue
        if cond.op in _NUMERIC_OPS and spec_in.type != "number":
            problems.append(source.problem((*at, "op"), f"{cond.op!r} needs a number input, {cond.field!r} is {spec_in.type}"))
        for v in values:
            ok = {"number": isinstance(v, int | float) and not isinstance(v, bool),
                  "string": isinstance(v, str), "boolean": isinstance(v, bool)}[spec_in.type]
            if not ok:
                problems.append(source.problem((*at, "value"), f"{v!r} is not a {spec_in.type}"))
            elif spec_in.enum and v not in spec_in.enum:
                problems.append(source.problem((*at, "value"), f"{v!r} not one of {spec_in.enum}"))
    return problems


def _check_semantics(spec: InterventionRuleSet, source: RulesSource) -> None:
    problems = []
    ids = [r.id for r in spec.rules]
    for i, rule in enumerate(spec.rules):
        if ids.count(rule.id) > 1:
            problems.append(source.problem(("rules", i, "id"), f"duplicate rule id {rule.id!r}"))
        problems += _check_conditions(spec, source, rule.when, ("rules", i, "when"))
        for j, action in enumerate(rule.then):
            if action not in spec.interventions:
                problems.append(source.problem(("rules", i, "then", j), f"unknown intervention {action!r}; allowed: {sorted(spec.interventions)}"))
        for j, test in enumerate(rule.tests):
            for k in test.given:
                if k not in spec.inputs:
                    problems.append(source.problem(("rules", i, "tests", j, "given", k), f"unknown input {k!r}"))
    for name, iv in spec.interventions.items():
        if iv.follow_up is not None:
            problems += _check_conditions(spec, source, iv.follow_up.when, ("interventions", name, "follow_up", "when"))
    if problems:
        raise RulesError(problems)


def _condition(cond: Condition) -> dict[str, Any]:
    if cond.op == "eq":
        return {cond.field: cond.value}
    if cond.op == "in":
        return {"$or": [{cond.field: v} for v in cond.value]}
    return {_DURABLE_OPS[cond.op]: {cond.field: cond.value}}


def _match(conditions: list[Condition]) -> dict[str, Any]:
    return {"$and": [_condition(c) for c in conditions]} if len(conditions) > 1 else _condition(conditions[0])


def compile_rules(spec: InterventionRuleSet) -> dict[str, dict[str, Any]]:
    """durable-rules JSON, one ruleset per mode (assert_fact fires all matches, post only the first), plus one
    for the follow-up conditions so they run on the same engine as the rules that opened the case."""
    out: dict[str, dict[str, Any]] = {}
    for rule in spec.rules:
        out.setdefault(rule.mode, {})[rule.id] = {"all": [{"m": _match(rule.when)}], "pri": rule.priority, "run": rule.id}
    for name, iv in spec.interventions.items():
        if iv.follow_up is not None and iv.follow_up.when:
            rid = _follow_up_rule(name)
            out.setdefault("followup", {})[rid] = {"all": [{"m": _match(iv.follow_up.when)}], "run": rid}
    return out


def load_intervention_rules(path: Path, source: RulesSource | None = None) -> CompiledInterventionRules:
    """Validates in order: schema, fields/types/actions, trial compile, golden tests. Raises RulesError."""
    source = source or read_source(path)
    spec = validate_model(source, InterventionRuleSet)
    _check_semantics(spec, source)
    digest = content_hash(source.data)
    name = f"{spec.ruleset}_v{spec.version}_{digest[:10]}"
    compiled = compile_rules(spec)
    for mode, ruleset in compiled.items():
        DurableRulesEvaluator.register(f"{name}_{mode}", ruleset)
    rules = CompiledInterventionRules(spec=spec, hash=digest, engine_name=name, compiled=compiled)
    problems = []
    for i, rule in enumerate(spec.rules):
        for j, test in enumerate(rule.tests):
            _, actions = rules.evaluate(test.given)
            if set(actions) != set(test.expect):
                problems.append(source.problem(("rules", i, "tests", j, "expect"),
                                               f"golden test failed: given {test.given} expected {sorted(test.expect)}, got {sorted(actions)}"))
    if problems:
        raise RulesError(problems)
    return rules


@lru_cache(maxsize=4)
def active_intervention_rules(rules_dir: Path) -> CompiledInterventionRules:
    return load_intervention_rules(rules_dir / "interventions.yaml")
