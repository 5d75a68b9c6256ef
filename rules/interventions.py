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


class InterventionSpec(_Strict):
    kind: Literal["automated", "human"]
    title: str = Field(min_length=1)
    window_days: int = Field(ge=1, le=365)
    owner_role: Literal["ops_manager", "people_ops", "admin"] | None = None
    sla_hours: float | None = Field(default=None, gt=0)
    escalate_to_role: Literal["ops_manager", "people_ops", "admin"] | None = None
    message_subject: str | None = None
    message_body: str | None = None

    @model_validator(mode="after")
    def _human_needs_owner_and_sla(self) -> InterventionSpec:
        if self.kind == "human" and (self.owner_role is None or self.sla_hours is None):
            raise ValueError("a human intervention needs owner_role and sla_hours")
        if self.kind == "automated" and not self.message_subject:
            raise ValueError("an automated intervention needs message_subject")
        return self


class Condition(_Strict):
    field: str
    op: Op
    value: Any


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

    def evaluate(self, facts: dict[str, Any], evaluator: Evaluator = DurableRulesEvaluator) -> tuple[list[str], list[str]]:
        """Returns (matched rule ids, intervention types) for one tutor's facts; types deduplicated in order."""
        fired: list[str] = []
        for mode in ("fact", "event"):
            if any(r.mode == mode for r in self.spec.rules):
                fired += evaluator.evaluate(f"{self.engine_name}_{mode}", facts, mode)
        by_id = {r.id: r for r in self.spec.rules}
        matched = sorted(set(fired), key=lambda rid: (by_id[rid].priority, rid))
        actions = list(dict.fromkeys(a for rid in matched for a in by_id[rid].then))
        return matched, actions


def _check_semantics(spec: InterventionRuleSet, source: RulesSource) -> None:
    problems = []
    ids = [r.id for r in spec.rules]
    for i, rule in enumerate(spec.rules):
        if ids.count(rule.id) > 1:
            problems.append(source.problem(("rules", i, "id"), f"duplicate rule id {rule.id!r}"))
        for j, cond in enumerate(rule.when):
            loc = ("rules", i, "when", j)
            spec_in = spec.inputs.get(cond.field)
            if spec_in is None:
                problems.append(source.problem((*loc, "field"), f"unknown input {cond.field!r}; declare it under inputs"))
                continue
            values = cond.value if cond.op == "in" else [cond.value]
            if cond.op == "in" and not isinstance(cond.value, list):
                problems.append(source.problem((*loc, "value"), "op 'in' takes a list"))
                continue
            if cond.op in _NUMERIC_OPS and spec_in.type != "number":
                problems.append(source.problem((*loc, "op"), f"{cond.op!r} needs a number input, {cond.field!r} is {spec_in.type}"))
            for v in values:
                ok = {"number": isinstance(v, int | float) and not isinstance(v, bool),
                      "string": isinstance(v, str), "boolean": isinstance(v, bool)}[spec_in.type]
                if not ok:
                    problems.append(source.problem((*loc, "value"), f"{v!r} is not a {spec_in.type}"))
                elif spec_in.enum and v not in spec_in.enum:
                    problems.append(source.problem((*loc, "value"), f"{v!r} not one of {spec_in.enum}"))
        for j, action in enumerate(rule.then):
            if action not in spec.interventions:
                problems.append(source.problem(("rules", i, "then", j), f"unknown intervention {action!r}; allowed: {sorted(spec.interventions)}"))
        for j, test in enumerate(rule.tests):
            for k in test.given:
                if k not in spec.inputs:
                    problems.append(source.problem(("rules", i, "tests", j, "given", k), f"unknown input {k!r}"))
    if problems:
        raise RulesError(problems)


def _condition(cond: Condition) -> dict[str, Any]:
    if cond.op == "eq":
        return {cond.field: cond.value}
    if cond.op == "in":
        return {"$or": [{cond.field: v} for v in cond.value]}
    return {_DURABLE_OPS[cond.op]: {cond.field: cond.value}}


def compile_rules(spec: InterventionRuleSet) -> dict[str, dict[str, Any]]:
    """durable-rules JSON, one ruleset per mode (assert_fact fires all matches, post only the first)."""
    out: dict[str, dict[str, Any]] = {}
    for rule in spec.rules:
        match = {"$and": [_condition(c) for c in rule.when]} if len(rule.when) > 1 else _condition(rule.when[0])
        out.setdefault(rule.mode, {})[rule.id] = {"all": [{"m": match}], "pri": rule.priority, "run": rule.id}
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
