"""page_speed.py's browser pass: every page it timed, loaded in Chromium over real HTTP, against the 2 s target.

The app is served by uvicorn in a thread of this process on a free port (core/serving.py, as the browser tests'
`site`), and Debian's chromium is driven through Playwright's sync API with one browser context per role holding
the page session page_speed.py issued. Each page is loaded once as a warm-up (it fills the context's cache with the shared
assets, as a second visit would find them) and then `runs` times in the same tab; each load's figures come from
the page's own Navigation Timing entry, so Playwright's round trips are not counted:
- TTFB: responseStart - startTime (the server time plus the local socket);
- DOM ready: domContentLoadedEventEnd (the deferred scripts, htmx and Chart.js, have run);
- charts drawn: when the last `canvas[data-chart-config]` got its data-chart-drawn mark (static/charts.js sets it
  right after Chart.js drew it), recorded by a MutationObserver installed before any page script runs;
- load: loadEventEnd, or charts drawn when later, as a page is not fully loaded before its charts are. The 2 s
  target is judged on its p95.
Home keeps an event stream (/live/home) open for as long as it is shown, so the network never goes idle: each
load waits for the load event and the charts, never for network idle.
"""
from __future__ import annotations

import importlib.util
import os
import statistics
from contextlib import AbstractContextManager
from pathlib import Path

from bench.backfill_speed import figure
from core.serving import serving

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 2000.0
CHROMIUM = Path("/usr/bin/chromium")
# As tests/browser/conftest.py: no display, root in a container (no user namespaces for the sandbox), and a
# browser that must not call home.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Copied from node_modules by `make install`; without them the pages still work but draw nothing.
VENDOR = [ROOT / "web" / "static" / "vendor" / name for name in ("htmx.min.js", "chart.umd.min.js")]
WAIT_MS = 15_000  # how long a load or its charts may take before the page is reported as failing outright

# Runs before the page's own scripts (init scripts are not subject to the page's CSP). Observer callbacks run as
# microtasks, i.e. right after the script that marked the canvases, so the time is when they were drawn.
CHARTS_OBSERVER = """
window.__chartsDrawnAt = null;
new MutationObserver(() => { window.__chartsDrawnAt = performance.now(); })
  .observe(document, {subtree: true, attributes: true, attributeFilter: ['data-chart-drawn']});
"""
LOADED = "() => { const n = performance.getEntriesByType('navigation')[0]; return !!n && n.loadEventEnd > 0; }"
CHARTS_DRAWN = "() => [...document.querySelectorAll('canvas[data-chart-config]')].every((c) => c.dataset.chartDrawn)"
TIMINGS = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  return {ttfb: n.responseStart - n.startTime, dom: n.domContentLoadedEventEnd, load: n.loadEventEnd,
          canvases: document.querySelectorAll('canvas[data-chart-config]').length, charts: window.__chartsDrawnAt};
}"""


def percentiles(times: list[float]) -> tuple[float, float]:
    """(p50, p95), the same way for the server and the browser figures."""
    p95 = statistics.quantiles(times, n=20, method="inclusive")[18] if len(times) > 1 else times[0]
    return statistics.median(times), p95


def cannot_run() -> str | None:
    """Why the browser pass cannot run here, or None."""
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} missing (Debian's chromium: apt-get install -y chromium, as root)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is missing (the test extras install it)"
    for asset in VENDOR:
        if not asset.exists():
            return f"{asset.relative_to(ROOT)} missing (`make install` copies it from node_modules; it needs npm)"
    return None


def serve(settings) -> AbstractContextManager[str]:  # noqa: ANN001 - core.config.Settings
    """The app over HTTP on a free local port, for as long as the block runs; yields its base URL."""
    from api.main import create_app

    return serving(create_app(settings), name="page-load-server")


def _load(tab, target: str) -> dict:  # noqa: ANN001 - playwright's Page
    """One navigation's figures; raises on a status other than 200, or when the load or the charts never come."""
    response = tab.goto(target, wait_until="load", timeout=WAIT_MS)
    if response is None or response.status != 200:
        raise RuntimeError(f"answered {response.status if response else 'nothing'}")
    tab.wait_for_function(LOADED, timeout=WAIT_MS)  # loadEventEnd is set once the load handlers have returned
    if tab.evaluate("document.querySelectorAll('canvas[data-chart-config]').length"):
        try:
            tab.wait_for_function(CHARTS_DRAWN, timeout=WAIT_MS)
        except Exception as exc:  # noqa: BLE001 - playwright's TimeoutError, re-raised with what it means here
            raise RuntimeError(f"charts not drawn within {WAIT_MS / 1000:.0f} s") from exc
    return tab.evaluate(TIMINGS)


def _report(name: str, role: str, target: str, samples: list[dict]) -> bool:
    loads = [max(s["load"], s["charts"] or 0.0) for s in samples]
    figure(f"page_{name}_browser_ttfb_p50", percentiles([s["ttfb"] for s in samples])[0], "ms")
    figure(f"page_{name}_browser_dom_ready_p50", percentiles([s["dom"] for s in samples])[0], "ms")
    if samples[0]["canvases"]:
        p50, p95 = percentiles([s["charts"] for s in samples])
        figure(f"page_{name}_browser_charts_drawn_p50", p50, "ms")
        figure(f"page_{name}_browser_charts_drawn_p95", p95, "ms")
    p50, p95 = percentiles(loads)
    figure(f"page_{name}_browser_load_p50", p50, "ms")
    figure(f"page_{name}_browser_load_p95", p95, "ms")
    ok = p95 < TARGET_MS
    charts = f", {samples[0]['canvases']} charts" if samples[0]["canvases"] else ""
    print(f"{'PASS' if ok else 'FAIL'}: {name} browser load p95 {p95:.0f} ms < {TARGET_MS:.0f} ms "
          f"({role}{charts}, {target[:60]})", flush=True)
    return ok


def browser_pass(settings, pages: list[tuple[str, str, str]], cookies: dict[str, str],  # noqa: ANN001
                 runs: int) -> bool:
    """Loads each (name, path, role) page once as a warm-up, then `runs` times; True when every p95 passes."""
    from playwright.sync_api import sync_playwright

    from api.actor import SESSION_COOKIE

    print(f"# browser pass: {CHROMIUM} over HTTP, {runs} loads per page after one warm-up; "
          f"target p95 < {TARGET_MS:.0f} ms", flush=True)
    all_ok = True
    with serve(settings) as base_url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        tabs: dict = {}
        try:
            for name, target, role in pages:
                if role not in tabs:
                    context = browser.new_context(base_url=base_url)
                    context.add_init_script(CHARTS_OBSERVER)
                    if role in cookies:
                        context.add_cookies([{"name": SESSION_COOKIE, "value": cookies[role], "url": base_url,
                                              "httpOnly": True, "sameSite": "Lax"}])
                    tabs[role] = context.new_page()
                try:
                    _load(tabs[role], target)
                    samples = [_load(tabs[role], target) for _ in range(runs)]
                except Exception as exc:  # noqa: BLE001 - one broken page must not hide the others' figures
                    print(f"FAIL: {name} browser load of {target[:60]} as {role}: {str(exc).splitlines()[0]}",
                          flush=True)
                    all_ok = False
                    continue
                all_ok &= _report(name, role, target, samples)
        finally:
            # Pages first: Home's event stream closes with its tab, so the server can stop at once.
            for tab in tabs.values():
                tab.context.close()
            browser.close()
    return all_ok
