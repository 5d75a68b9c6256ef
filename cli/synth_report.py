"""`tutorpulse synth report`: how closely the stored synthetic data matches the PRD's figures."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.config import get_settings


def table(report) -> str:  # noqa: ANN001
    rows = [("check", "value", "target", "result")]
    rows += [(c.name, c.shown, c.target, "PASS" if c.passed else "FAIL") for c in report.checks]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def write_markdown(report, path: Path) -> None:  # noqa: ANN001 - synth.report is imported lazily
    lines = ["# Synthetic data realism report\n",
             f"Window: {report.start:%Y-%m-%d %H:%M} to {report.end:%Y-%m-%d %H:%M} UTC "
             f"({report.full_days} full days). Result: **{'PASS' if report.passed else 'FAIL'}** "
             f"({sum(c.passed for c in report.checks)}/{len(report.checks)} checks).\n",
             "| check | value | target | result | how it is computed |", "|---|---|---|---|---|"]
    for c in report.checks:
        lines.append(f"| {c.name} | {c.shown} | {c.target} | {'PASS' if c.passed else 'FAIL'} | {c.how} |")
    lines += ["", "Churn: the PRD gives a rate only for voluntary resignation (1-2%/month, §1.4), so that is the "
              "pass mark; the all-cause rate is judged against a 2-15%/month sanity band of our choosing.", "",
              "## Charts", ""]
    lines += [f"![{Path(p).stem}]({Path(p).name})" for p in report.charts]
    path.write_text("\n".join(lines) + "\n")


def run(args: argparse.Namespace) -> int:
    from core.db import get_engine
    from synth.report import build_report
    from synth.report_charts import draw_all

    if args.days is not None and args.days < 1:
        print("--days must be at least 1")
        return 2
    built = build_report(get_engine(get_settings().database_url), args.days)
    if built is None:
        print("no sessions stored: run `tutorpulse synth backfill` first")
        return 1
    report, data = built
    out = Path(args.out)
    report.charts = draw_all(data, out)
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2, default=str))
    write_markdown(report, out / "report.md")
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print(f"window {report.start:%Y-%m-%d %H:%M} to {report.end:%Y-%m-%d %H:%M} UTC, {report.full_days} full days")
        print(table(report))
        print("\nhow each figure is computed:")
        for check in report.checks:
            print(f"  {check.name}: {check.how}")
        print(f"{sum(c.passed for c in report.checks)}/{len(report.checks)} checks pass; report.md, report.json "
              f"and {len(report.charts)} charts in {out}")
    return 0 if report.passed else 1


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Registers `report` on the `synth` command group's subparsers."""
    p = subparsers.add_parser("report", help="compare the stored data with the PRD's figures (exit 1 if any check fails)")
    p.add_argument("--out", default="./var/synth-report", help="directory for report.md, report.json and charts")
    p.add_argument("--days", type=int, help="assess only the last N days stored (default: everything)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.set_defaults(func=run)
    return p
