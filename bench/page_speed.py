"""Server time of every page on a 90-day backfill (~270k sessions, 300 tutors) against the 200 ms target.

Prints `name: value unit` lines per page: the first request's time (`_first`: cold caches, e.g. the analytics
figures, which are kept per data version), then p50 and p95 over `--runs` more requests, a PASS/FAIL line on the
p95, and the peak RSS of the measuring process (the world is built in a child process). The app runs in-process (FastAPI's TestClient: routing,
the Policy with its audit row, the SQL and the template are all counted, no network), signed in with a real page
session per role; Temporal is pointed at a closed port, as pages read the database only.

The world is a SQLite file under the system's temporary folder, built on first use and reused afterwards (a
90-day backfill takes a minute or two): the synthetic backfill (synth.backfill, as bench/backfill_90d.py), then
the daily evaluations of its last days and the cases the active rules would have opened (bench/rules_dry_run.py's
`prepare`), so the risk, queue and analytics pages have predictions and interventions to show. `--db PATH` names
another file, `--rebuild` starts it afresh, `--days` / `--tutors` build a smaller world for a quick check.
Pages whose route does not exist in this checkout are reported as skipped.

Then a browser pass (bench/page_load.py) loads the same pages as the same roles in Chromium over real HTTP against
the 2 s target: `page_<name>_browser_load_p50` / `_p95` and a PASS/FAIL line each, with TTFB, DOM-ready and
charts-drawn figures. It runs when Debian's /usr/bin/chromium, the playwright package and the npm assets are
present, and is otherwise reported as skipped with the reason; `--no-browser` turns it off, `--browser-runs`
sets the loads per page. The exit status is 1 when any page misses either target.
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backfill_speed import SESSIONS_PER_DAY, figure, peak_rss_mb  # noqa: E402
from bench.page_load import browser_pass, cannot_run, percentiles  # noqa: E402

TARGET_MS = 200.0
N_TUTORS = 300


def world_path(days: int, tutors: int, seed: int) -> Path:
    return Path(tempfile.gettempdir()) / "tutorpulse-bench" / f"page_speed-{days}d-{tutors}t-seed{seed}.db"


def build_world(path: Path, *, days: int, tutors: int, seed: int, history_days: int) -> None:
    """Backfill, evaluations and open cases into a new file; renamed into place only once complete, so an
    interrupted build is never mistaken for a finished world."""
    from bench.rules_dry_run import _backfill_end, prepare
    from core.db import get_engine
    from core.migrate import upgrade
    from synth.backfill import backfill

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.db")
    partial.unlink(missing_ok=True)
    url = f"sqlite:///{partial}"
    upgrade(url)
    started = time.perf_counter()
    backfill(get_engine(url), days=days, seed=seed, n_tutors=tutors, sessions_per_day=SESSIONS_PER_DAY,
             progress=lambda _line: None)
    print(f"# {days}-day backfill of {tutors} tutors took {time.perf_counter() - started:.0f}s", flush=True)
    end = _backfill_end(url)
    prepare(url, as_of=end.replace(hour=0, minute=0, second=0, microsecond=0), history_days=history_days)
    get_engine(url).dispose()
    partial.rename(path)


def _accounts(engine, tutor_id: str) -> dict[str, str]:  # noqa: ANN001
    """role -> user id of a bench account (created once; no password: nobody signs in with one)."""
    from core.db import session_scope
    from domain.users import service as user_service
    from domain.users.models import User

    ids = {"ops_manager": "u_bench_ops", "admin": "u_bench_admin", "tutor": "u_bench_tutor"}
    with session_scope(engine) as db:
        for role, user_id in ids.items():
            if db.get(User, user_id) is None:
                user_service.create_user(db, user_id=user_id, email=f"{user_id}@bench.example", name=user_id,
                                         role=role, password=None, tutor_id=tutor_id if role == "tutor" else None)
    return ids


def _session_cookie(engine, user_id: str) -> str:  # noqa: ANN001
    from core.db import session_scope
    from domain.auth import service as auth_service
    from domain.users.models import User

    with session_scope(engine) as db:
        return auth_service.issue(db, db.get(User, user_id), kind=auth_service.SESSION, minutes=240).token


def _subjects(engine) -> tuple[str, str, str]:  # noqa: ANN001
    """(the tutor with the highest latest churn score, that tutor's latest unrated past session, a subject taught):
    the tutor profile's and the feedback link's targets, and the analytics page's subject filter."""
    from sqlalchemy import select

    from core.db import session_scope
    from core.types import utcnow
    from domain.feedback.models import StudentFeedback
    from domain.scoring.models import ChurnPrediction
    from domain.sessions.models import TutoringSession as S

    with session_scope(engine) as db:
        tutor_id = db.execute(select(ChurnPrediction.tutor_id).order_by(
            ChurnPrediction.prediction_date.desc(), ChurnPrediction.churn_score.desc()).limit(1)).scalar_one()
        session_id, subject = db.execute(
            select(S.session_id, S.subject).outerjoin(StudentFeedback, StudentFeedback.session_id == S.session_id)
            .where(S.tutor_id == tutor_id, S.scheduled_start < utcnow(), StudentFeedback.feedback_id.is_(None))
            .order_by(S.scheduled_start.desc()).limit(1)).one()
    return tutor_id, session_id, subject


def measure(path: Path, runs: int, browser_runs: int) -> bool:
    """Server times of every page, then (browser_runs > 0) the browser pass over the pages that answered."""
    import fastapi.routing
    from fastapi.testclient import TestClient

    from api.actor import SESSION_COOKIE
    from api.main import create_app
    from core.config import Settings
    from core.db import get_engine
    from domain.feedback import links

    url = f"sqlite:///{path}"
    engine = get_engine(url)
    tutor_id, session_id, subject = _subjects(engine)
    users = _accounts(engine, tutor_id)
    settings = Settings(database_url=url, temporal_address="127.0.0.1:1", login_rate_limit="100000/minute",
                        feedback_rate_limit="100000/minute")
    app = create_app(settings)
    routes = {getattr(ctx, "path_format", "") for ctx in fastapi.routing.iter_route_contexts(app.routes)}
    # (name, route template, path to request, who asks)
    pages = [
        ("home", "/", "/", "ops_manager"),
        ("queue", "/queue", "/queue?scope=all", "ops_manager"),
        ("analytics", "/analytics", "/analytics", "ops_manager"),
        ("analytics_subject", "/analytics", f"/analytics?subject={subject}", "ops_manager"),
        ("tutor", "/tutors/{tutor_id}", f"/tutors/{tutor_id}", "ops_manager"),
        ("rules", "/rules", "/rules", "admin"),
        ("admin_users", "/admin/users", "/admin/users", "admin"),
        ("admin_audit", "/admin/audit", "/admin/audit", "admin"),
        ("portal", "/portal", "/portal", "tutor"),
        ("feedback", "/feedback/{token}", f"/feedback/{links.sign(session_id)[0]}", "anonymous"),
    ]
    cookies = {role: _session_cookie(engine, uid) for role, uid in users.items()}
    all_ok = True
    answered = []  # (name, path, role) of the pages the browser pass loads
    with TestClient(app, base_url="https://testserver") as client:
        for name, template, target, role in pages:
            if template not in routes:
                print(f"# {name}: skipped, no {template} route in this checkout", flush=True)
                continue
            client.cookies.clear()
            if role != "anonymous":
                client.cookies.set(SESSION_COOKIE, cookies[role])
            started = time.perf_counter()
            first = client.get(target, follow_redirects=False)
            cold = (time.perf_counter() - started) * 1000
            if first.status_code != 200:
                print(f"FAIL: {name} {target} answered {first.status_code} as {role}", flush=True)
                all_ok = False
                continue
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                response = client.get(target, follow_redirects=False)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, f"{target}: {response.status_code}"
            p50, p95 = percentiles(times)
            figure(f"page_{name}_first", cold, "ms")  # cold caches: the first visit after a change
            figure(f"page_{name}_p50", p50, "ms")
            figure(f"page_{name}_p95", p95, "ms")
            ok = p95 < TARGET_MS
            all_ok &= ok
            print(f"{'PASS' if ok else 'FAIL'}: {name} p95 {p95:.0f} ms < {TARGET_MS:.0f} ms ({role}, {target[:60]})",
                  flush=True)
            answered.append((name, target, role))
    # Before the browser pass: its server thread is in this process too, and these are the server pass's figures.
    figure("peak_rss_mb", peak_rss_mb(), "MB")
    if browser_runs and answered:
        all_ok &= browser_pass(settings, answered, cookies, browser_runs)
    engine.dispose()
    return all_ok


def main() -> int:
    # Starlette's TestClient warns about its httpx dependency on import; not this bench's concern.
    warnings.filterwarnings("ignore", message=".*httpx.*")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90, help="days of history to build (default 90)")
    parser.add_argument("--tutors", type=int, default=N_TUTORS, help=f"tutors to build (default {N_TUTORS})")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--history-days", type=int, default=7, help="daily evaluations before the end (default 7)")
    parser.add_argument("--runs", type=int, default=30, help="timed requests per page (default 30)")
    parser.add_argument("--browser-runs", type=int, default=10, help="timed browser loads per page (default 10)")
    parser.add_argument("--no-browser", action="store_true", help="server times only, no browser pass")
    parser.add_argument("--db", type=Path, help="the world's SQLite file (default: per days/tutors/seed in the "
                                                "system's temporary folder); built if missing")
    parser.add_argument("--rebuild", action="store_true", help="build the world again even if the file exists")
    args = parser.parse_args()
    if not 1 <= args.days <= 365 or args.runs < 1 or args.browser_runs < 1:
        parser.error("--days must be 1-365, --runs and --browser-runs at least 1")
    skipped = "--no-browser" if args.no_browser else cannot_run()
    path = args.db or world_path(args.days, args.tutors, args.seed)
    if args.rebuild or not path.exists():
        # In a spawned child: ru_maxrss only grows, and the backfill's peak is not the pages'.
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(build_world, path, days=args.days, tutors=args.tutors, seed=args.seed,
                        history_days=args.history_days).result()
    else:
        from core.migrate import upgrade

        age = timedelta(seconds=time.time() - path.stat().st_mtime)
        upgrade(f"sqlite:///{path}")  # a world built by an older checkout gets this one's indexes
        print(f"# reusing {path} (last written {age.days} days ago; the pages read it as of now, "
              f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC)", flush=True)
    print(f"# world {path}: {args.runs} requests per page after one warm-up; target p95 < {TARGET_MS:.0f} ms",
          flush=True)
    if skipped:
        print(f"# browser pass: skipped, {skipped}", flush=True)
    return 0 if measure(path, args.runs, 0 if skipped else args.browser_runs) else 1


if __name__ == "__main__":
    sys.exit(main())
