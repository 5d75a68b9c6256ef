"""The schemathesis run of tests/integration/test_schemathesis.py with many more examples, per role.

Every API operation of the app's OpenAPI schema, signed in as every role (and anonymously), on a seeded SQLite
world with Temporal unreachable: schema-valid requests for every caller, schema-invalid ones for the roles the
operation's Policy lets in. Checks: no 5xx, only documented statuses, bodies and content types. A random seed each
run (printed; `--seed N` repeats one) and failing requests shrunk to a minimal one.

Prints per role the cases sent, the failing (operation, mode) runs and the seconds, then each failure. Exits 1
when a failure is not one of test_schemathesis.KNOWN_FAILURES (the bugs already written down).
`.venv/bin/python bench/schemathesis_long.py --examples 300 --only /api/v1/rules`
"""
from __future__ import annotations

import argparse
import base64
import logging
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

# The checkout's code, not whatever version of tutorpulse the interpreter happens to have installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# Throwaway keys, set before anything reads the settings, so nothing is generated into the checkout's var/.
os.environ.setdefault("PII_KEY", base64.b64encode(os.urandom(32)).decode())
os.environ.setdefault("SECRET_KEY", base64.b64encode(os.urandom(32)).decode())

from bench.backfill_speed import figure, fresh_database, peak_rss_mb  # noqa: E402
from tests.integration.test_schemathesis import (  # noqa: E402
    ANONYMOUS, KNOWN_FAILURES, Outcome, build_fuzz_world, fuzz_operation,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100, help="schema-valid requests per allowed role")
    parser.add_argument("--refused", type=int, default=5, help="schema-valid requests per refused role/anonymous")
    parser.add_argument("--negative", type=int, default=30, help="schema-invalid requests per allowed role")
    parser.add_argument("--seed", type=int, default=None, help="repeat a run (default: a random seed)")
    parser.add_argument("--only", default="", help="only operations whose label contains this text")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    logging.getLogger("api.deps").setLevel(logging.ERROR)  # "Temporal unreachable" is the point here
    print(f"# seed {seed}; {args.examples} valid per allowed role, {args.refused} per refused caller, "
          f"{args.negative} invalid per allowed role", flush=True)

    outcomes: list[Outcome] = []
    started = time.perf_counter()
    with fresh_database("sqlite") as url:
        world = build_fuzz_world(url)
        labels = sorted(label for label in world.policies if args.only in label
                        and world.schema.find_operation_by_label(label) is not None)
        for label in labels:
            outcomes += fuzz_operation(world, label, allowed=args.examples, refused=args.refused,
                                       negative=args.negative, seed=seed, shrink=True)
            print(f"# {label}: {sum(o.cases for o in outcomes if o.label == label)} cases", flush=True)
    report(outcomes, time.perf_counter() - started)
    unknown = [o for o in outcomes if o.failure and o.label not in KNOWN_FAILURES]
    print(f"# {'FAIL' if unknown else 'PASS'}: {len(unknown)} failing runs outside KNOWN_FAILURES (seed {seed})")
    return 1 if unknown else 0


def report(outcomes: list[Outcome], seconds: float) -> None:
    by_who: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_who[outcome.who].append(outcome)
    for who in sorted(by_who, key=lambda w: (w == ANONYMOUS, w)):
        runs = by_who[who]
        print(f"cases[{who}]: {sum(o.cases for o in runs)}")
        print(f"failures[{who}]: {sum(1 for o in runs if o.failure)} runs of {len(runs)}")
        figure(f"seconds[{who}]", sum(o.seconds for o in runs), "s")
    print(f"cases: {sum(o.cases for o in outcomes)}")
    figure("cases_per_second", sum(o.cases for o in outcomes) / max(seconds, 1e-9), "/s")
    figure("seconds", seconds, "s")
    figure("peak_rss", peak_rss_mb(), "MB")
    for o in outcomes:
        if o.failure:
            known = o.label in KNOWN_FAILURES
            print(f"\n# --- {o.label} as {o.who} ({o.mode}){' (known)' if known else ''}")
            lines = o.failure.splitlines()
            if known:  # already written down: what failed and the request, not the whole report again
                lines = [line for line in lines if line.strip().startswith(("- ST", "server error", "curl "))]
            print("\n".join(f"#   {line}" for line in lines))


if __name__ == "__main__":
    sys.exit(main())
