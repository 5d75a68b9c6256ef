"""Replay: every saved history in tests/replay/histories must replay against the current workflow code.

A change to workflow code that would make a running workflow take a different path (new or reordered
activities, timers, children) fails here with a nondeterminism error. Gate such a change with
``workflow.patched`` (see tests/replay/README.md); do not re-record the histories to make this pass.

No server needed: the Replayer runs the workflow code in process against the saved events.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.replay.variants import REMINDER_PATCH, PrePatchHumanTaskWorkflow, UngatedHumanTaskWorkflow
from worker import WORKFLOWS

HISTORIES = Path(__file__).resolve().parent / "histories"
PATHS = sorted(HISTORIES.glob("*.json"))
PRE_PATCH = HISTORIES / "human_task_pre_reminder_patch.json"
PATCHED_H1 = HISTORIES / "human_task_h1_reminder_escalation.json"


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def workflow_type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


def patch_ids(history: WorkflowHistory) -> set[str]:
    """The ``workflow.patched`` ids whose markers the history holds."""
    ids = set()
    for event in history.events:
        marker = event.marker_recorded_event_attributes
        if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED or marker.marker_name != "core_patch":
            continue
        for payloads in marker.details.values():  # {"patch-data": [{"id": ..., "deprecated": ...}]}
            ids.update(json.loads(p.data)["id"] for p in payloads.payloads)
    return ids


def test_every_workflow_type_has_a_saved_history() -> None:
    registered = {workflow._Definition.must_from_class(cls).name for cls in WORKFLOWS}  # the @workflow.defn name
    saved = {workflow_type(load(p)) for p in PATHS}
    missing = sorted(registered - saved)
    assert not missing, (
        f"no saved history for {', '.join(missing)} in {HISTORIES}: add a scenario for it to "
        f"tests/replay/scenarios_*.py and run `make histories` (or `python -m tests.replay.record --only <name>` "
        f"to leave the others alone)")


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
async def test_saved_history_replays_against_current_code(path: Path) -> None:
    result = await Replayer(workflows=WORKFLOWS).replay_workflow(load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, (
        f"{path.name} no longer replays against the current workflow code: a workflow already running with this "
        f"history would break. Gate the change with workflow.patched (tests/replay/README.md).\n{result.replay_failure!r}")


def test_the_reminder_patch_is_recorded_in_new_histories_only() -> None:
    assert REMINDER_PATCH in patch_ids(load(PATCHED_H1)), "a task started by the current code records the patch marker"
    assert REMINDER_PATCH not in patch_ids(load(PRE_PATCH)), "the pre-patch history must predate the patch"


async def test_pre_patch_history_replays_because_the_reminder_is_gated() -> None:
    """A task started before the reminder shipped (no reminder timer, no marker) keeps running on the new code:
    ``workflow.patched`` is False while it replays, so the reminder branch is skipped."""
    result = await Replayer(workflows=WORKFLOWS).replay_workflow(load(PRE_PATCH), raise_on_replay_failure=False)
    assert result.replay_failure is None, repr(result.replay_failure)


async def test_an_ungated_reminder_would_break_pre_patch_tasks() -> None:
    """The same reminder without the gate schedules a timer and activities the old history does not have."""
    result = await Replayer(workflows=[UngatedHumanTaskWorkflow]).replay_workflow(load(PRE_PATCH),
                                                                                   raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, workflow.NondeterminismError), repr(result.replay_failure)


async def test_the_pre_patch_variant_itself_replays_its_own_history() -> None:
    """Control for the test above: the failure comes from the ungated reminder, not from the variant mechanism."""
    result = await Replayer(workflows=[PrePatchHumanTaskWorkflow]).replay_workflow(load(PRE_PATCH),
                                                                                    raise_on_replay_failure=False)
    assert result.replay_failure is None, repr(result.replay_failure)
