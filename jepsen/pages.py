"""HTML pages of the store: the index of runs and one page per run.

Role: what a person opens first. The run page (also written as index.html into every run
folder) leads with the verdict and where it comes from (one row per check), then the test's
settings, the plots, and links to every file of the run; the index lists every run, newest
first, with its test, time, verdicts and links. `jepsen serve` serves both.

Rules: self-contained pages (inline CSS, no script); every text from a run is escaped;
links are relative to the page, so the pages work from the file system and from `serve`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jepsen.store import RunInfo

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:20px auto;max-width:1100px;color:#222;
 padding:0 16px}
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:22px 0 8px}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;
 vertical-align:top}th{background:#f4f4f4}
.valid-true{color:#1a7f37;font-weight:bold}.valid-false{color:#c62828;font-weight:bold}
.valid-unknown{color:#9a6700;font-weight:bold}
.verdict{font-size:20px;padding:8px 12px;border-radius:6px;display:inline-block;margin:6px 0}
.verdict.valid-true{background:#e6f4ea}.verdict.valid-false{background:#fdecea}
.verdict.valid-unknown{background:#fff4d6}
img{max-width:100%;border:1px solid #eee;margin:6px 0}
code{background:#f4f4f4;padding:1px 4px;border-radius:3px}
ul.files{columns:3}
"""


def valid_text(valid: Any) -> str:
    if valid is True:
        return "valid"
    if valid is False:
        return "INVALID"
    return "unknown"


def valid_class(valid: Any) -> str:
    return {True: "valid-true", False: "valid-false"}.get(valid, "valid-unknown") \
        if isinstance(valid, bool) else "valid-unknown"


def _e(value: Any) -> str:
    return html.escape(str(value))


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{_CSS}</style></head><body>{body}</body></html>")


def _check_detail(name: str, check: dict[str, Any]) -> str:
    skip = {"valid", "problems", "unserved", "by_f"}
    parts = [f"{_e(k)}: {_e(v)}" for k, v in check.items() if k not in skip and v not in ([], "")]
    if check.get("report"):
        parts.append(f"<a href='{_e(check['report'])}'>report</a>")
    lists = [check.get("problems") or [], check.get("unserved") or []]
    items = "".join(f"<li>{_e(item)}</li>" for items in lists for item in items[:20])
    if name == "stats" and check.get("by_f"):
        items += "".join(f"<li>{_e(f)}: {_e(json.dumps(c))}</li>"
                         for f, c in check["by_f"].items())
    return "<br>".join(parts) + (f"<ul>{items}</ul>" if items else "")


def _files(run_dir: Path) -> str:
    entries = []
    for path in sorted(run_dir.rglob("*")):
        if path.is_file() and path.name != "index.html":
            relative = path.relative_to(run_dir).as_posix()
            entries.append(f"<li><a href='{_e(relative)}'>{_e(relative)}</a> "
                           f"({path.stat().st_size:,} bytes)</li>")
    return "<ul class='files'>" + "".join(entries) + "</ul>"


def render_run_page(run_dir: Path, config: dict[str, Any], results: dict[str, Any] | None,
                    index_link: str) -> str:
    """The page of one run; `index_link` (may be empty) points back to the index."""
    title = f"{config.get('name', run_dir.parent.name)} {run_dir.name}"
    valid = None if results is None else results.get("valid")
    body = [f"<p><a href='{_e(index_link)}'>all runs</a></p>" if index_link else "",
            f"<h1>{_e(title)}</h1>",
            f"<div class='verdict {valid_class(valid)}'>Verdict: {valid_text(valid)}</div>"]
    if results is None:
        body.append("<p>This run has no results.json yet (still running, or it stopped "
                    "before checking; <code>python -m jepsen analyze</code> checks it).</p>")
    else:
        rows = "".join(
            f"<tr><td>{_e(name)}</td><td class='{valid_class(check.get('valid'))}'>"
            f"{valid_text(check.get('valid'))}</td><td>{_check_detail(name, check)}</td></tr>"
            for name, check in results.get("checks", {}).items())
        body.append(f"<h2>Checks</h2><table><tr><th>check</th><th>verdict</th>"
                    f"<th>details</th></tr>{rows}</table>")
    settings = ["workload", "nodes", "nemesis_spec", "nemesis_interval_s", "concurrency",
                "rate", "time_limit_s", "ops_per_key", "seed", "unsafe_stale_reads",
                "no_sessions", "db_kind"]
    rows = "".join(f"<tr><th>{_e(key)}</th><td>{_e(config.get(key))}</td></tr>"
                   for key in settings if key in config)
    body.append(f"<h2>Test</h2><table>{rows}</table>")
    links = [("timeline.html", "timeline"), ("linearizability.html", "linearizability report"),
             ("history.txt", "history (text)"), ("jepsen.log", "harness log")]
    body.append("<h2>Reports</h2><p>" + " · ".join(
        f"<a href='{name}'>{label}</a>" for name, label in links if (run_dir / name).is_file())
        + "</p>")
    for image in ("latency-raw.png", "latency-quantiles.png", "rate.png"):
        if (run_dir / image).is_file():
            body.append(f"<img src='{image}' alt='{image}'>")
    body.append(f"<h2>Files</h2>{_files(run_dir)}")
    return _page(title, "".join(body))


def render_index(runs: Sequence[RunInfo], store_name: str) -> str:
    """The index of every run in the store, newest first."""
    rows = []
    for run in runs:
        results = run.results or {}
        checks = results.get("checks", {})
        verdicts = " ".join(f"<span class='{valid_class(c.get('valid'))}'>{_e(name)}: "
                            f"{valid_text(c.get('valid'))}</span>"
                            for name, c in checks.items())
        link = f"{run.test}/{run.stamp}/"
        config = run.config or {}
        rows.append(
            f"<tr><td><a href='{_e(link)}'>{_e(run.test)}</a></td><td>{_e(run.stamp)}</td>"
            f"<td class='{valid_class(run.valid)}'>{valid_text(run.valid)}</td>"
            f"<td>{verdicts}</td><td>{_e(config.get('workload', ''))}</td>"
            f"<td>{_e(config.get('nemesis_spec', ''))}</td>"
            f"<td><a href='{_e(link)}timeline.html'>timeline</a> "
            f"<a href='{_e(link)}history.txt'>history</a></td></tr>")
    table = ("<table><tr><th>test</th><th>time</th><th>verdict</th><th>checks</th>"
             "<th>workload</th><th>nemesis</th><th>links</th></tr>" + "".join(rows) + "</table>")
    empty = "<p>No runs stored yet: <code>python -m jepsen run</code> makes one.</p>"
    return _page(f"Jepsen runs: {store_name}",
                 f"<h1>Jepsen runs in {_e(store_name)}</h1>"
                 f"<p>{len(runs)} run(s), newest first.</p>" + (table if runs else empty))
