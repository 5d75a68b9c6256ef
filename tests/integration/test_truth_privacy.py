"""The simulation's ground truth (synth_truth_*) must never be readable through the product.

Models are evaluated against the truth tables; if the API, the pages or the features could see them, an
evaluation would grade the product on answers it had been shown. Two guards: every parameterless GET route is
called against a database whose truth rows carry distinctive values, and no product module imports
synth.truth or names its tables. Each guard is first shown to catch a planted leak, so a pass means something.
"""
from __future__ import annotations

import ast
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from api.main import create_app
from core.config import Settings
from core.db import get_engine
from core.migrate import upgrade
from domain.interventions.models import Intervention
from domain.scoring.models import ChurnPrediction, RiskLevel
from domain.sessions.models import TutoringSession
from domain.students.models import Student
from domain.tutors.models import Tutor
from synth.models import SynthWorld
from synth.truth import TruthTransition, TruthTutor
from tests.auth import as_role

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_DIRS = ("api", "web", "domain", "activities", "workflows", "rules", "core", "ml")
# No product module is exempt: the truth tables are registered on the metadata by migrations/env.py.
REGISTERS_METADATA_ONLY: set[str] = set()
TRUTH_CLASSES = {"TruthTutor", "TruthTransition"}
# The synthetic world's departure records as training labels (synth/label_feed.py): composition roots may wire
# them into the model's training as a callable; no other product module may take them.
LABEL_FEED = "synth.label_feed"
WIRES_LABEL_FEED = {"worker.py"}

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)
SHOWN_TUTOR = "t-shown-4b7e"  # a product tutor, visible on pages, who also has a truth row
TRUTH_ONLY_TUTOR = "tp-truth-only-9f2c71"  # exists only in the truth tables
SHOWN_CHURNED_AT = datetime(2029, 3, 11, 5, 6, 7, tzinfo=UTC)
HIDDEN_CHURNED_AT = datetime(2031, 7, 19, 13, 47, 29, tzinfo=UTC)
HIDDEN_ONBOARDED_AT = datetime(2018, 2, 3, 4, 5, 6, tzinfo=UTC)
TRANSITION_REASON = "drift:marker-5d1e0a"


def _renderings(at: datetime) -> list[str]:
    return [at.date().isoformat(), at.strftime("%d %B %Y"), at.strftime("%Y-%m-%d %H:%M"), str(int(at.timestamp()))]


# Lower-case substrings that only the truth rows hold. "resignation" is a truth churn cause the product never
# says: it detects inactivity and risk, it is not told why a tutor left.
TRUTH_MARKERS = [TRUTH_ONLY_TUTOR, "resignation", TRANSITION_REASON, "latent-marker",
                 *_renderings(SHOWN_CHURNED_AT), *_renderings(HIDDEN_CHURNED_AT), *_renderings(HIDDEN_ONBOARDED_AT)]
TRUTH_MARKERS = [m.lower() for m in TRUTH_MARKERS]


def _seed(db: Session) -> None:
    world = SynthWorld(seed=7, epoch=NOW - 30 * DAY, backfill_end=NOW, n_tutors=2, sessions_per_day=10)
    db.add(world)
    db.add_all([
        Tutor(tutor_id=SHOWN_TUTOR, name="Priya Visible", email="priya@example.com",
              onboarding_date=(NOW - 200 * DAY).date(), behavioral_archetype="churner"),
        Student(student_id="st-1", name="Alex Student"),
    ])
    db.flush()
    db.add_all([
        TutoringSession(session_id="se-1", tutor_id=SHOWN_TUTOR, student_id="st-1", session_number=1,
                        scheduled_start=NOW - 2 * DAY, actual_start=NOW - 2 * DAY, duration_minutes=60,
                        subject="Algebra", student_rating=2.0),
        ChurnPrediction(tutor_id=SHOWN_TUTOR, prediction_date=(NOW - DAY).date(), as_of=NOW - DAY, churn_score=88,
                        risk_level=RiskLevel.critical, model_version="test-1"),
        Intervention(intervention_id=f"intervention-{SHOWN_TUTOR}-retention_interview-w1", tutor_id=SHOWN_TUTOR,
                     intervention_type="retention_interview", kind="human", trigger_reason="Churn score 88",
                     recommended_date=NOW - DAY, owner_role="people_ops", due_date=NOW + DAY,
                     rules_version="v1", rules_hash="h"),
        TruthTutor(tutor_id=SHOWN_TUTOR, world_id=world.world_id, initial_archetype="churner",
                   onboarded_at=NOW - 200 * DAY, churned_at=SHOWN_CHURNED_AT, churn_cause="resignation"),
        TruthTutor(tutor_id=TRUTH_ONLY_TUTOR, world_id=world.world_id, initial_archetype="steady",
                   onboarded_at=HIDDEN_ONBOARDED_AT, churned_at=HIDDEN_CHURNED_AT, churn_cause="resignation"),
        TruthTransition(transition_id=f"{SHOWN_TUTOR}-marker", tutor_id=SHOWN_TUTOR, at=NOW - 3 * DAY,
                        from_state="steady", to_state="latent-marker", reason=TRANSITION_REASON),
    ])
    db.commit()


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    url = f"sqlite:///{tmp_path / 'privacy.db'}"
    upgrade(url)  # the real schema, truth tables included: they sit next to the product's in one database
    engine = get_engine(url)
    with Session(engine) as db:
        _seed(db)
    yield create_app(Settings(database_url=url, temporal_address="127.0.0.1:1"))
    engine.dispose()


def get_routes(app: FastAPI) -> list[str]:
    """GET routes without path parameters. Mounts (static files) serve files from disk, not the database."""
    # Since FastAPI 0.16x app.routes holds included routers unflattened; iter_route_contexts flattens them
    # (it is what the OpenAPI generator walks) and yields contexts carrying the full, prefixed path.
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = flatten(app.routes) if flatten else app.routes
    return sorted({r.path for r in routes if "GET" in (getattr(r, "methods", None) or ()) and "{" not in r.path})


def leaks_in_responses(app: FastAPI) -> tuple[dict[str, list[str]], dict[str, str]]:
    """({path: truth markers found in its body}, {path: body}) over every parameterless GET route."""
    leaks, bodies = {}, {}
    with TestClient(app) as client:
        client.headers.update(as_role(app.state.engine, "admin"))  # the widest view; anonymous sees nothing at all
        for path in get_routes(app):
            response = client.get(path)
            assert response.status_code < 500, f"GET {path}: {response.status_code} {response.text[:300]}"
            bodies[path] = response.text
            found = [m for m in TRUTH_MARKERS if m in response.text.lower()]
            if found:
                leaks[path] = found
    return leaks, bodies


def truth_in_openapi(schema: dict) -> list[str]:
    hits = [f"path {p}" for p in schema.get("paths", {}) if "truth" in p.lower()]
    hits += [f"schema {n}" for n in schema.get("components", {}).get("schemas", {}) if "truth" in n.lower()]
    if "truth" in json.dumps(schema).lower():
        hits.append("the word 'truth' somewhere in the schema")
    return hits


def _plant_leak(app: FastAPI) -> None:
    engine = app.state.engine

    @app.get("/api/v1/truth-probe")
    def truth_probe() -> list[dict]:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT tutor_id, churn_cause, churned_at FROM synth_truth_tutors")).all()
        return [{k: str(v) for k, v in r._mapping.items()} for r in rows]


def test_route_scan_catches_a_planted_leak(app: FastAPI) -> None:
    _plant_leak(app)
    leaks, _ = leaks_in_responses(app)
    assert "/api/v1/truth-probe" in leaks
    assert {TRUTH_ONLY_TUTOR.lower(), "resignation", "2031-07-19"} <= set(leaks["/api/v1/truth-probe"])
    assert truth_in_openapi(app.openapi())


def test_no_get_route_shows_ground_truth(app: FastAPI) -> None:
    with app.state.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM synth_truth_tutors")).scalar_one() == 2
    leaks, bodies = leaks_in_responses(app)
    # The walk reached the pages and APIs that show tutors, and they did show the seeded tutor: an empty or
    # broken walk would otherwise pass.
    assert {"/", "/queue", "/api/v1/interventions", "/api/v1/kpis", "/api/health", "/api/openapi.json"} <= set(bodies)
    assert any("Priya Visible" in body for body in bodies.values())
    assert SHOWN_TUTOR in bodies["/api/v1/interventions"]
    assert leaks == {}, f"ground truth visible through the product: {leaks}"


def test_openapi_does_not_mention_truth(app: FastAPI) -> None:
    schema = app.openapi()
    assert schema["paths"], "empty schema: the check below would pass vacuously"
    assert truth_in_openapi(schema) == []


# --- static: the product does not import synth.truth or name its tables -----------------------------------

def truth_references(source: str) -> list[str]:
    """Ways a module could reach the truth tables: importing synth.truth, or naming a synth_truth_* table."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names
                      if a.name in ("synth.truth", LABEL_FEED) or a.name.startswith("synth.truth.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module in ("synth.truth", LABEL_FEED) or node.module.startswith("synth.truth."):
                found.append(f"from {node.module} import ...")
            elif node.module == "synth" and any(a.name in ("truth", "label_feed") for a in node.names):
                found.append("from synth import truth")
            elif node.module == "domain.registry" and any(a.name in TRUTH_CLASSES for a in node.names):
                found.append("truth class taken from domain.registry")
        elif isinstance(node, ast.Attribute) and node.attr in TRUTH_CLASSES:
            found.append(f"attribute .{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # Catches importlib.import_module("synth.truth") and raw SQL against the tables.
            if "synth.truth" in node.value or "synth_truth_" in node.value.lower():
                found.append(f"string {node.value[:60]!r}")
    return found


def product_modules() -> list[Path]:
    files = [p for d in PRODUCT_DIRS if (ROOT / d).is_dir() for p in (ROOT / d).rglob("*.py")]
    return sorted([*files, ROOT / "worker.py"])


@pytest.mark.parametrize("planted", [
    "import synth.truth",
    "import synth.truth as t",
    "from synth.truth import TruthTutor",
    "from synth import models, truth",
    "def f():\n    from synth.truth import ChurnCause\n    return ChurnCause",
    "import importlib\nm = importlib.import_module('synth.truth')",
    "from sqlalchemy import text\nq = text('SELECT churn_cause FROM synth_truth_tutors')",
    "from domain.registry import TruthTransition",
    "import domain.registry as r\nrows = r.TruthTutor",
    "from synth.label_feed import churn_labels",
    "from synth import label_feed",
])
def test_static_scan_catches_planted_imports(tmp_path: Path, planted: str) -> None:
    module = tmp_path / "planted.py"
    module.write_text(planted + "\n")
    assert truth_references(module.read_text()), planted


def test_static_scan_ignores_neighbours(tmp_path: Path) -> None:
    module = tmp_path / "clean.py"
    module.write_text("from synth.models import SynthWorld\nimport synth.truthy\nlabel = 'ground truth'\n")
    assert truth_references(module.read_text()) == []


def test_product_modules_do_not_reach_truth() -> None:
    modules = product_modules()
    assert len(modules) > 20 and ROOT / "api" / "main.py" in modules  # the walk found the product
    offenders = {}
    for path in modules:
        rel = path.relative_to(ROOT).as_posix()
        if rel in REGISTERS_METADATA_ONLY:
            continue
        found = truth_references(path.read_text())
        if rel in WIRES_LABEL_FEED:
            found = [f for f in found if f != f"from {LABEL_FEED} import ..."]
        if found:
            offenders[rel] = found
    assert offenders == {}, f"product modules reaching the ground truth: {offenders}"


def test_only_the_worker_wires_the_label_feed() -> None:
    """worker.py takes the label feed and hands it to the model's training, and nothing else of the truth."""
    source = (ROOT / "worker.py").read_text()
    assert truth_references(source) == [f"from {LABEL_FEED} import ..."]
    assert "truth_for=churn_labels" in source


def test_metadata_registry_only_registers_truth_tables() -> None:
    assert "synth.truth" not in (ROOT / "domain" / "registry.py").read_text()
    for rel in sorted(REGISTERS_METADATA_ONLY):
        tree = ast.parse((ROOT / rel).read_text())
        imported = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                    and n.module == "synth.truth" for a in n.names}
        # Stale exemption: once the import moves (e.g. to migrations/env.py) the entry must go too.
        assert imported, f"{rel} no longer imports synth.truth: drop it from REGISTERS_METADATA_ONLY"
        used = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in imported]
        assert used == [], f"{rel} uses {used} beyond registering them (only the import and __all__ are allowed)"
