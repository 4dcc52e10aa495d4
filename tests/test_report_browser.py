"""The HTML report in a real browser: headless Debian chromium, network blocked, every chart drawn,
no console error, a screenshot kept (artifacts/test-browser/). Skips when chromium is absent."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, TESTS_DATA

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not installed (apt-get install -y chromium; .ci/run installs it)",
)
SHOTS = REPO / "artifacts" / "test-browser"
# blocks every network request: names resolve nowhere and any proxy use goes to a closed port
NO_NETWORK = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9"]
BASE = [CHROMIUM or "", "--headless", "--no-sandbox", "--disable-gpu", *NO_NETWORK]
# collects errors, requests and what plotly drew into an attribute --dump-dom shows
PROBE = """<script>(function(){var errs=[];
window.addEventListener('error',function(e){errs.push(String(e.message))});
var ce=console.error;console.error=function(){errs.push(Array.prototype.join.call(arguments,' '));
ce.apply(console,arguments)};
window.addEventListener('load',function(){setTimeout(function(){
var plots=Array.prototype.map.call(document.querySelectorAll('div[id^=mmbot-plot-]'),function(d){
return {id:d.id,drawn:d.querySelectorAll('.main-svg').length>0,
traces:(d.data||[]).map(function(t){return t.name||''}),title:(d.layout&&d.layout.title&&d.layout.title.text)||''}});
document.documentElement.setAttribute('data-probe',JSON.stringify({errors:errs,
requests:performance.getEntriesByType('resource').map(function(x){return x.name}),plots:plots}))},500)})})();
</script>"""


def _probe(page: Path, tmp_path: Path) -> dict:
    probed = tmp_path / f"probe-{page.name}"
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    cmd = [*BASE, "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    m = re.search(r'data-probe="([^"]*)"', p.stdout)
    assert m, f"the page never finished loading: {p.stderr[-2000:]}"
    return json.loads(html.unescape(m.group(1)))


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    import mmbot

    r = mmbot.backtest(
        TESTS_DATA / "binance_usdm_btcusdt_sample.gz", knobs={"min_interval_ms": 100}
    )
    out = tmp_path_factory.mktemp("report")
    from mmbot.report import write_reports

    k = r.knobs
    iterations = [  # a soak's per-iteration rows as the soak writes them (input to the renderer)
        {"iteration": 1, "knobs": k, "metrics": {"net_bps": -0.2}, "net_bps_so_far": -0.2},
        {
            "iteration": 2,
            "knobs": {**k, "tail_age_ms": 800},
            "metrics": {"net_bps": 0.1},
            "net_bps_so_far": -0.05,
        },
    ]
    _, page = write_reports(out, r.edge_report, r.runs, r.gate, iterations=iterations)
    return page


def test_report_charts_render_offline_without_console_errors(report_html, tmp_path) -> None:
    probe = _probe(report_html, tmp_path)
    assert probe["errors"] == []
    assert [u for u in probe["requests"] if not u.startswith("file:")] == []
    plots = probe["plots"]
    assert len(plots) >= 7 and all(p["drawn"] for p in plots), plots
    price = plots[0]
    assert price["title"].startswith("Price, our quotes and fills")
    assert {"mid", "our bid", "our ask", "buy fills", "sell fills"} <= set(price["traces"])
    titles = [p["title"] for p in plots]
    assert any(t.startswith("Soak: net per iteration") for t in titles)
    assert any(t.startswith("Soak: knobs per iteration") for t in titles)


def test_probe_catches_a_page_error(report_html, tmp_path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text(
        report_html.read_text().replace("</body>", "<script>noSuchFn()</script></body>")
    )
    assert any("noSuchFn" in e for e in _probe(broken, tmp_path)["errors"])


def test_screenshot_is_kept(report_html) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "report.png"
    shot.unlink(missing_ok=True)
    cmd = [
        *BASE,
        "--virtual-time-budget=10000",
        "--window-size=1280,2400",
        "--hide-scrollbars",
        f"--screenshot={shot}",
        report_html.as_uri(),
    ]
    subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert shot.exists() and shot.stat().st_size > 50_000, "screenshot missing or blank"
