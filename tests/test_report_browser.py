"""report.html in a real headless Chromium: it loads, its figures decode, it fetches nothing.

Skipped when no `chromium` / `chromium-browser` is on PATH. Two facts are checked:
- a checker page (with a script; the report itself has none) loads report.html in an iframe
  and reports each image's decoded size into its own DOM, read back with --dump-dom;
- Chromium's network log shows no request made by the page. file:// and data: loads never
  reach the network stack, so any request the page makes appears there. Chromium's own
  background requests have no page origin ("not an origin") and are told apart; a control
  page with one external image proves that the check sees page requests.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_compare import FakeRun, tiny_plan

from nasagent.agent.compare import run_compare

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(BROWSER is None, reason="chromium is not installed")

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)

CHECKER = """<!DOCTYPE html><html><body><pre id="result">pending</pre>
<script>
// Defined before the iframe exists, so its load event cannot fire before the handler is set.
function check(frame) {
  const show = (value) => {
    document.getElementById("result").textContent = JSON.stringify(value);
  };
  const doc = frame.contentDocument;
  // The load event waits for every image, so each one has been fetched and decoded by now:
  // a broken image reports complete with a natural size of 0.
  const sizes = Array.from(doc.images).map(
    (img) => img.complete ? [img.naturalWidth, img.naturalHeight] : "incomplete");
  show({title: doc.title, tables: doc.querySelectorAll("table").length, images: sizes});
}
</script>
<iframe id="frame" src="report.html" width="1200" height="800" onload="check(this)"></iframe>
</body></html>
"""

LEAKY = '<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/leak.png"></body></html>'


def run_browser(page: Path, tmp_path: Path, *extra: str) -> str:
    """Load `page` headless and return the DOM after the page settled."""
    profile = tmp_path / f"profile-{page.stem}"
    command = [BROWSER or "chromium", *FLAGS, f"--user-data-dir={profile}", *extra,
               "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def page_requests(net_log: Path) -> list[str]:
    """URLs of network requests made by a page (not by the browser itself)."""
    log = json.loads(net_log.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        params.get("url", "")
        for event in log["events"]
        if event["type"] == start_job and "url" in (params := event.get("params", {}))
        and params.get("initiator") != "not an origin"
    ]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compare")
    run_compare(tiny_plan(seeds=3, iterations=8), out, run=FakeRun(), progress=False)
    return out


def test_report_loads_and_its_figures_decode(report_dir: Path, tmp_path: Path) -> None:
    checker = report_dir / "check.html"
    checker.write_text(CHECKER, encoding="utf-8")
    dom = run_browser(checker, tmp_path, "--allow-file-access-from-files")
    match = re.search(r'<pre id="result">([^<]*)</pre>', dom)
    assert match is not None, dom[:2000]
    result = json.loads(match.group(1).replace("&quot;", '"'))
    assert result["title"] == f"nasagent report: {report_dir.name}"
    assert result["tables"] == 3  # results, arms, best architecture per arm
    assert len(result["images"]) == 2
    for size in result["images"]:
        assert isinstance(size, list) and size[0] > 300 and size[1] > 200, size


def test_report_dom_has_the_results(report_dir: Path, tmp_path: Path) -> None:
    dom = run_browser(report_dir / "report.html", tmp_path)
    assert 'id="results"' in dom and "best at budget (mean ± std)" in dom
    assert "one-sided Mann-Whitney U llm vs random" in dom


def test_report_makes_no_request_while_a_leaky_page_does(report_dir: Path, tmp_path: Path) -> None:
    report_log = tmp_path / "report-netlog.json"
    run_browser(report_dir / "report.html", tmp_path, f"--log-net-log={report_log}")
    assert page_requests(report_log) == []
    leaky = tmp_path / "leaky.html"
    leaky.write_text(LEAKY, encoding="utf-8")
    leaky_log = tmp_path / "leaky-netlog.json"
    run_browser(leaky, tmp_path, f"--log-net-log={leaky_log}")
    assert page_requests(leaky_log) == ["http://127.0.0.1:9/leak.png"]
