"""Rule set text as admins write it: validation into a compiled rule set, stamping the version line, diffs, and
problems broken into file / line / rule / field for the API and the page.

Everything here works on the text, never on a re-dumped YAML, so an admin's comments and layout survive.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from rules.interventions import CompiledInterventionRules, load_intervention_rules
from rules.loader import RulesError, parse_source

# The shape rules/loader.py gives every problem: "<file>:<line>: [rule '<id>' ]field '<path>': <message>".
_PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?:rule '(?P<rule>[^']*)' )?(?:field '(?P<field>[^']*)': )?(?P<msg>.*)$",
                      re.S)


@dataclass(frozen=True)
class Problem:
    """One reason a rule set is refused, split so a client can point at the spot."""

    text: str  # the full message, exactly as `tutorpulse rules check` prints it
    file: str | None
    line: int | None
    rule: str | None
    field: str | None
    message: str

    @classmethod
    def parse(cls, text: str) -> Problem:
        m = _PROBLEM.match(text)
        if m is None:
            return cls(text=text, file=None, line=None, rule=None, field=None, message=text)
        return cls(text=text, file=m["file"], line=int(m["line"]), rule=m["rule"], field=m["field"], message=m["msg"])


def problems_of(exc: RulesError) -> list[Problem]:
    return [Problem.parse(p) for p in exc.problems]


def normalise(text: str) -> str:
    """Browsers send a textarea with CRLF line ends; store LF so diffs and hashes do not churn on them."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


def compile_text(text: str, path: str, *, ruleset: str) -> CompiledInterventionRules:
    """Validates ``text`` as the intervention rule set ``ruleset``: YAML, schema, fields and types, actions,
    trial compile, golden tests (rules/interventions.py), plus that the file names this rule set.

    ``path`` is what problems are reported against: "tutor_interventions@draft", "tutor_interventions@v3".
    Raises RulesError; nothing else escapes for a bad file.
    """
    source = parse_source(text, path)
    named = source.data.get("ruleset")
    if isinstance(named, str) and named != ruleset:
        # Checked before compiling: a renamed rule set would register under another engine name for nothing.
        raise RulesError([source.problem(("ruleset",), f"this is rule set {ruleset!r}; the file says {named!r}")])
    try:
        return load_intervention_rules(Path(path), source)
    except RulesError:
        raise
    except ValueError as exc:
        # The trial compile: rules/engine.py turns durable-rules' bare error codes into a ValueError naming the
        # ruleset. Anything the schema and semantic checks let through but the engine refuses lands here.
        raise RulesError([f"{path}:1: field '(document)': the rules engine refused the compiled rule set: {exc}"]) from None


_HEADER_LINE = r"^(?P<key>{key}[ \t]*:[ \t]*)(?P<value>[^#\n]*?)(?P<comment>[ \t]+#[^\n]*)?(?P<end>\n?)$"


def stamp(text: str, path: str, *, version: int, status: str) -> str:
    """``text`` with its top-level ``version:`` and ``status:`` values replaced, everything else kept.

    Published content says which version it is, so a file copied out of the history is self-describing and
    its hash differs from every other version's. Raises RulesError when the lines are not plain ``key: value``.
    """
    source = parse_source(text, path)
    lines = text.splitlines(keepends=True)
    wanted = {"version": version, "status": status}
    for key, value in wanted.items():
        line_no = source.lines.get((key,))
        if line_no is None:
            raise RulesError([f"{path}:1: field '{key}': missing; the rule set needs a top-level `{key}:` line"])
        m = re.match(_HEADER_LINE.format(key=key), lines[line_no - 1])
        if m is None:
            raise RulesError([f"{path}:{line_no}: field '{key}': write `{key}: <value>` on one line so it can be set on publish"])
        lines[line_no - 1] = f"{m['key']}{value}{m['comment'] or ''}{m['end']}"
    stamped = "".join(lines)
    data = parse_source(stamped, path).data
    if any(data.get(k) != v for k, v in wanted.items()):
        raise RulesError([f"{path}:1: field 'version': could not set version {version} / status {status} in the text"])
    return stamped


def unified_diff(before: str | None, after: str, *, before_label: str, after_label: str) -> str:
    """A unified diff of two rule set texts; empty for the first version, which replaced nothing."""
    if before is None:
        return ""
    return "".join(difflib.unified_diff(normalise(before).splitlines(keepends=True), normalise(after).splitlines(keepends=True),
                                        fromfile=before_label, tofile=after_label, n=3))
