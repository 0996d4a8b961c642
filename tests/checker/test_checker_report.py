"""The HTML report: self-contained, complete, and readable in a real browser.

The browser test renders the report of a non-linearizable history in Debian's headless
Chromium and checks the failing operations in the rendered DOM; it skips when
/usr/bin/chromium is absent (install it with `apt-get install -y chromium`). With
CHECKER_UPDATE_SCREENSHOT=1 it also refreshes docs/checker-report.png.
"""

from __future__ import annotations

import html
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from checker_gen import CORPUS, sequential_history

from checker import (
    CheckResult,
    Input,
    Operation,
    Output,
    Verdict,
    check_history,
    check_operations,
    get_model,
    render_html,
)

CHROMIUM = Path("/usr/bin/chromium")
DOCS_PNG = Path(__file__).parents[2] / "docs" / "checker-report.png"


def stale_read_result() -> CheckResult:
    ops = [
        Operation(0, Input("write", "x", 1), 0, Output("ok", 1), 2),
        Operation(1, Input("write", "x", 2), 3, Output("ok", 2), 5),
        Operation(2, Input("read", "x", None), 6, Output("ok", 1), 8),
        Operation(0, Input("cas", "x", (2, 3)), 7, Output("info", None), float("inf")),
    ]
    return check_operations(get_model("cas-register"), ops)


def failing_result() -> CheckResult:
    """A real etcd history when the corpus is present, else a small stale read."""
    if (CORPUS / "etcd" / "etcd_000.jsonl").is_file():
        return check_history(get_model("cas-register"), CORPUS / "etcd" / "etcd_000.jsonl")
    return stale_read_result()


def test_report_is_self_contained_and_names_the_failure() -> None:
    result = stale_read_result()
    assert result.verdict is Verdict.ILLEGAL
    page = render_html(result, title="stale <read>")
    assert "stale &lt;read&gt;" in page  # escaped
    assert not re.search(r"(src|href)\s*=|https?://|<link", page)
    assert "class='op blocking' data-op='2'" in page
    assert "fails here" in page
    assert "stuck in state 2" in page


def test_report_of_10000_operations_has_every_operation() -> None:
    ops = sequential_history("kv-get-put-append", random.Random(7), 10_000)
    ops = [Operation(op.client_id % 50, Input(op.input.f, str(i % 10), op.input.value),
                     op.call_time, op.output, op.return_time) for i, op in enumerate(ops)]
    page = render_html(check_operations(get_model("kv-get-put-append"), ops))
    assert page.count("<div class='op") >= 10_000
    assert len(page) < 15_000_000


def run_chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="needs Debian's chromium at /usr/bin/chromium "
                           "(apt-get install -y chromium)")
def test_report_in_headless_chromium(tmp_path: Path) -> None:
    result = failing_result()
    assert result.verdict is Verdict.ILLEGAL
    key = result.illegal_keys[0]
    assert key.counterexample is not None
    report = tmp_path / "report.html"
    report.write_text(render_html(result, title="checker report: a non-linearizable history"))
    dom = run_chromium(["--dump-dom", report.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-rendered="yes"' in dom.stdout  # the script ran
    assert 'id="verdict">illegal<' in dom.stdout
    for position in key.counterexample.unplaced:
        op = result.operations[position]
        text = result.model.describe_operation(op.input, op.output)
        assert re.search(rf'<li class="unplaced-op" data-op="{position}">p{op.client_id} '
                         rf"{re.escape(html.escape(text, quote=False))}", dom.stdout)
    blocking = key.counterexample.blocking
    assert re.search(rf'class="op blocking[^"]*" data-op="{blocking}"', dom.stdout)
    shot = tmp_path / "report.png"
    done = run_chromium([f"--screenshot={shot}", "--window-size=1400,900", report.as_uri()],
                        tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 20_000  # a blank page compresses to far less
    if os.environ.get("CHECKER_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, DOCS_PNG)
