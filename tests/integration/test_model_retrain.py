"""The churn model's retraining, from the command line and as the daily Temporal workflow.

`tutorpulse model train|evaluate|promote|list` on an engine-built world (progress lines, the champion/challenger
refusal with exit code 1, --force with a reason, clear exit-2 errors). The workflow on a real Temporal dev
server, on SQLite and PostgreSQL: train and register a candidate from the database, champion/challenger, score
the day's prediction rows; a second run of the same day re-uses its registration; an empty database trains
nothing and fails nothing; the Temporal Schedule follows the configured cron and keeps an operator's pause.
"""
from __future__ import annotations

import getpass
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from cli.main import main as cli_main
from core.config import Settings, get_settings
from core.db import get_engine, session_scope
from core.migrate import upgrade
from domain.evaluation.batch import evaluate_population
from domain.model_registry import service as registry
from domain.scoring.models import ChurnPrediction
from rules.scoring import active_scoring_rules
from tests.integration.model_world import WORLD_END, build_template, copy_world
from worker import build_worker
from workflows.inputs import ModelRetrainInput
from workflows.model import ModelRetrainWorkflow
from workflows.schedules import ensure_model_retrain_schedule, model_retrain_schedule_id, model_retrain_input

DAY = WORLD_END.date()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield build_template(tmp_path_factory.mktemp("model_world"))


@pytest.fixture
def model_settings(settings: Settings, tmp_path: Path) -> Settings:
    # One grid point: the test is about the lifecycle, not the tuning. Training and the model card often outlast
    # a 10 s heartbeat timeout: the first attempt then completes only because the activity heartbeats meanwhile.
    return settings.model_copy(update={"models_dir": tmp_path / "models", "model_grid_points": 1,
                                       "model_train_heartbeat_seconds": 10})


def _retrain_input(settings: Settings) -> ModelRetrainInput:
    inp = model_retrain_input(settings)
    inp.day = DAY.isoformat()
    return inp


async def test_retraining_registers_promotes_and_scores_then_reuses_its_registration(
        engine: Engine, model_settings: Settings, template: str, temporal_env: WorkflowEnvironment, temporal_client,
        activity_executor) -> None:  # noqa: ANN001
    copy_world(template, engine)
    with session_scope(engine) as db:  # the midnight rollup's rows, which the model's scores go onto
        rollup = evaluate_population(db, as_of=WORLD_END, rules=active_scoring_rules(model_settings.rules_dir))
    assert rollup.tutors > 20
    q = model_settings.temporal_task_queue
    async with build_worker(temporal_env.client, model_settings, activity_executor):
        handle = await temporal_client.start_workflow(ModelRetrainWorkflow.run, _retrain_input(model_settings),
                                                      id=f"model-retrain-{q}-{DAY}", task_queue=q)
        first = await handle.result()
        started = [e.activity_task_started_event_attributes for e in (await handle.fetch_history()).events
                   if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
        assert [a.attempt for a in started] == [1, 1, 1]  # train (heartbeating past its 10 s timeout), decide, score
        assert first.trained.version and not first.trained.reused and first.trained.label_source == "truth"
        assert first.trained.data_end == (DAY - timedelta(days=2)).isoformat()  # the data's last session is on the 19th
        assert first.promotion.promoted and first.promotion.reason == "no live model"
        assert first.promotion.live_version == first.trained.version
        assert first.scoring.version == first.trained.version and first.scoring.scored == rollup.tutors
        with session_scope(engine) as db:
            rows = db.execute(select(ChurnPrediction).where(ChurnPrediction.prediction_date == DAY)).scalars().all()
            assert {r.ml_model_version for r in rows} == {first.trained.version}
            assert all(r.model_churn_score is not None and len(r.model_factors) == 3 for r in rows)
            assert all(r.window_1day_probability <= r.window_7day_probability <= r.window_30day_probability
                       <= r.window_90day_probability for r in rows)
            row = registry.get_version(db, first.trained.version)
            assert row.status == "live" and row.metrics["val"] and row.metrics["test"]
            assert (model_settings.models_dir / row.path).exists()

        # The same day again (a re-run, or a retried activity): the registration is found, not trained twice.
        again = await temporal_client.execute_workflow(ModelRetrainWorkflow.run, _retrain_input(model_settings),
                                                       id=f"model-retrain-{q}-{DAY}-rerun", task_queue=q)
        assert again.trained.reused and again.trained.version == first.trained.version
        assert again.promotion.status == "live" and again.promotion.live_version == first.trained.version
        with session_scope(engine) as db:
            assert [r.version for r in registry.list_versions(db, "churn")] == [first.trained.version]


async def test_an_empty_database_trains_nothing_and_still_completes(
        model_settings: Settings, temporal_env: WorkflowEnvironment, temporal_client, activity_executor) -> None:  # noqa: ANN001
    q = model_settings.temporal_task_queue
    async with build_worker(temporal_env.client, model_settings, activity_executor):
        result = await temporal_client.execute_workflow(ModelRetrainWorkflow.run, _retrain_input(model_settings),
                                                        id=f"model-retrain-{q}-empty", task_queue=q)
    assert result.trained.version is None and "no sessions" in result.trained.skipped
    assert result.promotion is None and result.scoring.version is None and result.scoring.scored == 0


async def test_schedule_uses_the_configured_cron_and_keeps_a_pause(settings: Settings, temporal_client) -> None:  # noqa: ANN001
    custom = settings.model_copy(update={"model_retrain_cron": "30 2 * * *", "model_training_days": 60})
    await ensure_model_retrain_schedule(temporal_client, custom)
    handle = temporal_client.get_schedule_handle(model_retrain_schedule_id(custom))
    try:
        desc = await handle.describe()
        cal = desc.schedule.spec.calendars[0]
        assert [r.start for r in cal.minute] == [30] and [r.start for r in cal.hour] == [2]
        action = desc.schedule.action
        assert action.workflow == "ModelRetrainWorkflow" and action.id == f"model-retrain-{custom.temporal_task_queue}"
        await handle.pause(note="maintenance")
        await ensure_model_retrain_schedule(temporal_client, custom)  # a worker restart
        assert (await handle.describe()).schedule.state.paused
    finally:
        await handle.delete()


@pytest.fixture
def cli(template: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> Iterator[Callable[..., tuple[int, str, str]]]:
    """Runs `tutorpulse ARGS` in-process on a copy of the world; returns (exit code, stdout, stderr)."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    copy_world(template, get_engine(url))
    for key, value in {"DATABASE_URL": url, "MODELS_DIR": str(tmp_path / "models"), "MODEL_GRID_POINTS": "1"}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli_main(["model", *args])
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    get_settings.cache_clear()
    get_engine(url).dispose()


def test_model_commands(cli, tmp_path: Path) -> None:  # noqa: ANN001
    code, out, _ = cli("list")
    assert code == 0 and "no model versions registered" in out
    code, _, err = cli("evaluate")
    assert code == 2 and "no live churn model" in err

    code, out, _ = cli("train")
    assert code == 0
    for line in ("feature rows: ", "labels: truth", "pieces: train ", "tuned 1 settings", "calibration: ",
                 "validation 1d: n ", "test 7d: n ", "criterion (mean validation AUC)", "registered churn-",
                 "decision: promoted", "no live model", "scored "):
        assert line in out, f"missing progress line {line!r} in:\n{out}"
    with session_scope(get_engine(os.environ["DATABASE_URL"])) as db:
        (first,) = registry.list_versions(db)
    assert first.status == "live" and first.label_source == "truth"

    # The same data again: an identical model, which does not beat the live one (gain 0 is not > 0).
    code, out, _ = cli("train", "--no-promote")
    assert code == 0 and "stays a candidate" in out
    with session_scope(get_engine(os.environ["DATABASE_URL"])) as db:
        second = next(r for r in registry.list_versions(db) if r.version != first.version)
    assert second.status == "candidate"
    code, out, err = cli("promote", second.version)
    assert code == 1 and "refused: candidate AUC" in err and "decision: rejected" in out
    code, _, err = cli("promote", second.version, "--force")
    assert code == 2 and "--force needs --reason" in err
    code, out, _ = cli("promote", second.version, "--force", "--reason", "rollback drill")
    assert code == 0 and f"{second.version} is live" in out
    with session_scope(get_engine(os.environ["DATABASE_URL"])) as db:
        forced = registry.get_version(db, second.version)
        assert forced.status == "live" and registry.get_version(db, first.version).status == "retired"
        assert forced.decision["forced_by"] == getpass.getuser() and forced.decision["force_reason"] == "rollback drill"

    code, out, _ = cli("evaluate")
    assert code == 0 and second.version in out and "test 1d: n " in out and "AUC " in out
    code, out, _ = cli("list")
    assert code == 0 and first.version in out and "retired" in out and "live" in out
    code, _, err = cli("evaluate", "churn-20000101T000000Z-deadbeef")
    assert code == 2 and "unknown model version" in err
    code, _, err = cli("train", "--days", "3")
    assert code == 2 and "error: cannot train" in err
    code, _, err = cli("train", "--end", "2030-01-01")
    assert code == 2 and "after the last complete UTC day" in err


def test_model_train_on_an_empty_database_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}", "MODELS_DIR": str(tmp_path / "m")}
    exe = str(Path(sys.executable).parent / "tutorpulse")
    done = subprocess.run([exe, "model", "train"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "no sessions or events" in done.stderr
    done = subprocess.run([exe, "model", "train", "--labels", "truth"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and "holds no synthetic world" in done.stderr
