"""Reading rules files: YAML with a line for every path, content hashes, and errors that point at the spot."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class RulesError(ValueError):
    """A rules file that must not be used. The message names file, line, rule and field."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class RulesSource:
    path: str
    data: dict[str, Any]
    lines: dict[tuple, int]  # path inside the document -> 1-based line

    def where(self, loc: tuple) -> str:
        """'file:line' for the deepest part of ``loc`` that exists in the file."""
        loc = tuple(loc)
        while loc and loc not in self.lines:
            loc = loc[:-1]
        return f"{self.path}:{self.lines.get(loc, 1)}"

    def rule_id(self, loc: tuple) -> str | None:
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            rules = self.data.get("rules") or []
            if loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
                return str(rules[loc[1]].get("id", f"#{loc[1]}"))
        return None

    def problem(self, loc: tuple, msg: str) -> str:
        rule = self.rule_id(loc)
        field = ".".join(str(p) for p in loc) or "(document)"
        return f"{self.where(loc)}: {'rule ' + repr(rule) + ' ' if rule else ''}field '{field}': {msg}"


def _index(node: yaml.Node, path: tuple, out: dict[tuple, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            out[(*path, k)] = key.start_mark.line + 1
            _index(value, (*path, k), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), out)


def parse_source(text: str, path: str) -> RulesSource:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise RulesError([f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(data, dict):
        raise RulesError([f"{path}:1: a rules file is a mapping with ruleset, version, ... at the top"])
    lines: dict[tuple, int] = {}
    _index(node, (), lines)
    return RulesSource(path=path, data=data, lines=lines)


def read_source(path: Path) -> RulesSource:
    return parse_source(path.read_text(encoding="utf-8"), str(path))


def validate_model(source: RulesSource, model: type[M]) -> M:
    try:
        return model.model_validate(source.data)
    except ValidationError as exc:
        raise RulesError([source.problem(tuple(e["loc"]), e["msg"]) for e in exc.errors(include_input=False)]) from None


def content_hash(data: dict[str, Any]) -> str:
    """Hash of the parsed content: comments and formatting do not change a rule set's identity."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class VersionedRules(Generic[M]):
    """A validated rules file and the hash of its content."""

    spec: M
    hash: str

    @property
    def version_label(self) -> str:
        return f"{self.spec.ruleset}@v{self.spec.version}"


def load_versioned(path: Path, model: type[M]) -> VersionedRules[M]:
    source = read_source(path)
    return VersionedRules(spec=validate_model(source, model), hash=content_hash(source.data))
