"""The HTML report: one self-contained file per check, in the manner of Porcupine's.

Role: render a `CheckResult` as a page that works offline (inline CSS and JS, no CDN):
per key, a timeline of operations per process, the linearization found (complete, or the
longest partial one for an illegal key) with the state after each step, and the failing
point highlighted: the operations that could not be placed and the one returning first.

Rules: the timeline is static HTML (absolutely placed boxes), so it reads without
JavaScript and stays light at 10,000 operations; the script only adds click-to-follow.
Time is drawn by rank of distinct event times, so gaps do not stretch the page. Illegal
keys come first and open; ok keys are folded. Every model text is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Hashable

from checker.model import Effect
from checker.result import CheckResult, KeyResult, Verdict

ROW_PX = 24
STEP_PX = 22
LEFT_PX = 12
MAX_PREFIX_ROWS = 400  # linearization steps listed per key (the tail, where it fails)

_CSS = """
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 4px} h2{font-size:15px;display:inline}
.verdict-ok{color:#1a7f37}.verdict-illegal{color:#c62828}.verdict-unknown{color:#9a6700}
details{border:1px solid #ddd;border-radius:4px;margin:10px 0;padding:6px 10px}
.timeline{position:relative;overflow-x:auto;overflow-y:hidden;border:1px solid #eee;
 background:#fafafa;margin:8px 0}
.tlwrap{display:flex;margin:8px 0}.tlwrap .timeline{flex:1;margin:0}
.lanes{position:relative;width:48px;flex:none;border:1px solid #eee;border-right:0;
 background:#f0f0f0}
.lane{position:absolute;left:0;font:11px monospace;color:#666;padding-left:4px}
.op{position:absolute;height:17px;border-radius:3px;font:11px monospace;white-space:nowrap;
 overflow:hidden;padding:0 3px;box-sizing:border-box;cursor:pointer;border:1px solid #888;
 background:#e0e0e0}
.op.linearized{background:#c8e6c9;border-color:#2e7d32}
.op.unplaced{background:#ffcdd2;border-color:#c62828}
.op.blocking{background:#ef5350;color:#fff;border:2px solid #7f0000}
.op.dropped{background:#f5f5f5;color:#999;border-style:dotted}
.op.unknown-outcome{border-right-style:dashed;background-image:repeating-linear-gradient(
 45deg,transparent 0 6px,rgba(0,0,0,.06) 6px 12px)}
.op.selected{outline:3px solid #1565c0}
.failpoint{position:absolute;top:0;bottom:0;width:0;border-left:2px dashed #c62828}
.failpoint span{position:absolute;top:0;left:4px;color:#c62828;font-weight:bold;
 white-space:nowrap}
table.steps{border-collapse:collapse;font:12px monospace}
table.steps td{padding:1px 8px;border-bottom:1px solid #f0f0f0}
tr.selected td{background:#bbdefb} tr.failing td{background:#ffebee}
.failure{background:#ffebee;border-left:4px solid #c62828;padding:4px 10px;margin:6px 0}
.failure ul{margin:2px 0;font:12px monospace}
.legend span{display:inline-block;padding:0 6px;margin-right:6px;border:1px solid #888}
"""

_JS = """
document.body.setAttribute('data-rendered', 'yes');
document.querySelectorAll('.failpoint').forEach(function (fp) {
  var box = fp.closest('.timeline');
  if (box) box.scrollLeft = Math.max(0, fp.offsetLeft - box.clientWidth / 2);
});
document.addEventListener('click', function (e) {
  var el = e.target.closest('[data-op]');
  if (!el) return;
  var id = el.getAttribute('data-op');
  document.querySelectorAll('.selected').forEach(function (x) {
    x.classList.remove('selected'); });
  document.querySelectorAll('[data-op="' + id + '"]').forEach(function (x) {
    x.classList.add('selected'); });
  var row = document.querySelector('tr[data-op="' + id + '"]');
  if (row && el.tagName !== 'TR') row.scrollIntoView({block: 'nearest'});
});
"""


def render_html(result: CheckResult, title: str = "linearizability check") -> str:
    """The report for `result` as one self-contained HTML document."""
    order = {Verdict.ILLEGAL: 0, Verdict.UNKNOWN: 1, Verdict.OK: 2}
    keys = sorted(result.keys, key=lambda k: order[k.verdict])
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p>model <b>{_e(result.model.name)}</b> &middot; verdict "
        f"<b class='verdict-{result.verdict.value}' id='verdict'>{result.verdict.value}</b>"
        f" &middot; {_e(result.summary())}</p>",
        "<p class='legend'><span class='op linearized' style='position:static'>linearized"
        "</span><span class='op unplaced' style='position:static'>could not be placed</span>"
        "<span class='op blocking' style='position:static'>returns first, cannot be placed"
        "</span><span class='op' style='position:static'>not reached</span>"
        "<span class='op dropped' style='position:static'>constrains nothing</span>"
        "<span class='op unknown-outcome' style='position:static'>unknown outcome</span>"
        " &middot; click an operation to find it in the linearization</p>",
    ]
    parts.extend(_key_section(result, key) for key in keys)
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _key_section(result: CheckResult, key: KeyResult) -> str:
    opened = " open" if key.verdict is not Verdict.OK else ""
    head = (f"<details{opened} class='key' data-key='{_e(_key_label(key.key))}'><summary>"
            f"<h2>key {_e(_key_label(key.key))}</h2> &middot; "
            f"<b class='verdict-{key.verdict.value}'>{key.verdict.value}</b> &middot; "
            f"{len(key.operations)} operations &middot; {key.configurations} configurations"
            f"{' &middot; ' + _e(key.reason) if key.reason else ''}</summary>")
    return head + _failure(result, key) + _timeline(result, key) + _steps(result, key) + (
        "</details>")


def _failure(result: CheckResult, key: KeyResult) -> str:
    """One paragraph naming the failing point, above the timeline."""
    example = key.counterexample
    if example is None:
        return ""
    model, ops = result.model, result.operations
    items = []
    for p in example.unplaced:
        op = ops[p]
        mark = " <b>(returns first)</b>" if p == example.blocking else ""
        items.append(f"<li class='unplaced-op' data-op='{p}'>p{_e(op.client_id)} "
                     f"{_e(model.describe_operation(op.input, op.output))}{mark}</li>")
    return (f"<div class='failure'>After the {len(example.prefix)} operations linearized "
            f"below, in state <b>{_e(model.describe_state(example.state))}</b>, none of "
            f"these operations can be placed next:<ul>{''.join(items)}</ul></div>")


def _key_label(key: Hashable) -> str:
    return "(single object)" if key is None else str(key)


def _timeline(result: CheckResult, key: KeyResult) -> str:
    ops = result.operations
    model = result.model
    times = sorted({t for p in key.operations for t in (ops[p].call_time, ops[p].return_time)
                    if t != math.inf})
    rank = {t: i for i, t in enumerate(times)}
    end_x = LEFT_PX + (len(times) + 1) * STEP_PX
    clients = sorted({ops[p].client_id for p in key.operations})
    lane = {c: i for i, c in enumerate(clients)}
    step_of = {p: i for i, p in enumerate(key.linearization)}
    example = key.counterexample
    unplaced = set(example.unplaced) if example else set()
    blocking = example.blocking if example else None
    kept = _kept(result, key)
    boxes: list[str] = []
    labels = "".join(f"<div class='lane' style='top:{lane[c] * ROW_PX + 3}px'>p{_e(c)}</div>"
                     for c in clients)
    for p in key.operations:
        op = ops[p]
        x0 = LEFT_PX + rank[op.call_time] * STEP_PX
        x1 = end_x if op.return_time == math.inf else LEFT_PX + rank[op.return_time] * STEP_PX
        classes = ["op"]
        if p == blocking:
            classes.append("blocking")
        elif p in unplaced:
            classes.append("unplaced")
        elif p in step_of:
            classes.append("linearized")
        elif p not in kept:
            classes.append("dropped")
        if op.return_time == math.inf:
            classes.append("unknown-outcome")
        text = model.describe_operation(op.input, op.output)
        label = f"#{step_of[p] + 1} {text}" if p in step_of else text
        tip = f"p{op.client_id} {text}"
        if p in step_of:
            tip += f" | step {step_of[p] + 1}, state after: "
            tip += model.describe_state(key.states[step_of[p]])
        width = max(x1 - x0, 60 if p == blocking else 16)
        boxes.append(
            f"<div class='{' '.join(classes)}' data-op='{p}' title='{_e(tip)}' style='left:"
            f"{x0}px;width:{width}px;top:{lane[op.client_id] * ROW_PX + 3}px'>"
            f"{_e(label)}</div>")
    if blocking is not None and ops[blocking].return_time != math.inf:
        x = LEFT_PX + rank[ops[blocking].return_time] * STEP_PX
        boxes.append(f"<div class='failpoint' style='left:{x}px'><span>fails here</span></div>")
    height = len(clients) * ROW_PX + 6
    return (f"<div class='tlwrap'><div class='lanes' style='height:{height + 18}px'>{labels}"
            f"</div><div class='timeline' style='height:{height + 18}px'><div style='position:"
            f"relative;width:{end_x + 40}px;height:{height}px'>{''.join(boxes)}</div></div>"
            "</div>")


def _kept(result: CheckResult, key: KeyResult) -> set[int]:
    """The key's operations the search considered (effect other than NONE)."""
    ops, model = result.operations, result.model
    return {p for p in key.operations
            if model.effect(ops[p].input, ops[p].output) is not Effect.NONE}


def _steps(result: CheckResult, key: KeyResult) -> str:
    ops, model = result.operations, result.model
    if not key.linearization and key.counterexample is None:
        return ""
    what = "linearization" if key.verdict is Verdict.OK else "longest partial linearization"
    rows: list[str] = []
    first = max(0, len(key.linearization) - MAX_PREFIX_ROWS)
    if first:
        rows.append(f"<tr><td colspan='4'>... {first} earlier steps not listed</td></tr>")
    for i in range(first, len(key.linearization)):
        p = key.linearization[i]
        op = ops[p]
        rows.append(f"<tr data-op='{p}'><td>{i + 1}</td><td>p{_e(op.client_id)}</td><td>"
                    f"{_e(model.describe_operation(op.input, op.output))}</td><td>"
                    f"{_e(model.describe_state(key.states[i]))}</td></tr>")
    example = key.counterexample
    if example is not None:
        rows.append(f"<tr class='failing'><td colspan='4'><b>stuck in state "
                    f"{_e(model.describe_state(example.state))}</b>: none of these can be "
                    "placed next</td></tr>")
        for p in example.unplaced:
            op = ops[p]
            legal, _ = model.step(example.state, op.input, op.output)
            why = "dead end" if legal else "illegal here"
            first_mark = " (returns first)" if p == example.blocking else ""
            rows.append(f"<tr class='failing unplaced-op' data-op='{p}'><td>&#10007;</td><td>"
                        f"p{_e(op.client_id)}</td><td>"
                        f"{_e(model.describe_operation(op.input, op.output))}</td>"
                        f"<td>{why}{first_mark}</td></tr>")
    return (f"<p><b>{what}</b> ({len(key.linearization)} steps; state after each)</p>"
            f"<table class='steps'>{''.join(rows)}</table>")
