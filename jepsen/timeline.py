"""timeline.html: every operation as a box in its process's column, in real time.

Role: Jepsen's `checker/timeline` for this harness. Time runs down the page; each client
process has a column (grouped by the node it talked to), the nemesis has the first one.
A box spans an operation's invocation to its completion and is coloured by outcome: ok
green, fail pink, info (unknown) orange, never completed grey. Hovering a box shows its
process, f, key, value, outcome, error and times.

Rules: one self-contained file (inline CSS, no script), every text escaped; at most
`MAX_OPERATIONS` operations are drawn, and the page says when it shows fewer.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from jepsen.history import NEMESIS, Op, Process, pairs, render_value

MAX_OPERATIONS = 20_000
COLUMN_PX = 110
PX_PER_S = 120.0
_COLORS = {"ok": "#b7e4c7", "fail": "#f8c4d2", "info": "#ffd08a", None: "#ddd"}
_CSS = """
body{font:12px/1.4 system-ui,sans-serif;margin:12px;color:#222}
.legend span{display:inline-block;padding:1px 6px;margin-right:6px;border:1px solid #999}
.frame{position:relative;margin-top:28px}
.head{position:absolute;top:-22px;font:11px monospace;white-space:nowrap;overflow:hidden}
.op{position:absolute;box-sizing:border-box;border:1px solid #777;border-radius:2px;
 font:10px monospace;overflow:hidden;white-space:nowrap;padding:0 2px;min-height:3px}
.tick{position:absolute;left:0;font:10px monospace;color:#888;border-top:1px dotted #ccc}
"""


def _column_order(ops: Sequence[Op]) -> list[Process]:
    nodes: dict[Process, str] = {}
    for op in ops:
        if op.type == "invoke" and op.process != NEMESIS and op.process not in nodes:
            nodes[op.process] = op.node or ""
    ordered: list[Process] = [NEMESIS]
    ordered.extend(sorted(nodes, key=lambda p: (nodes[p], str(p).zfill(8))))
    return ordered


def _box(invocation: Op, completion: Op | None, left_px: int, end_ns: int) -> str:
    top = invocation.time_ns / 1e9 * PX_PER_S
    stop_ns = completion.time_ns if completion is not None else end_ns
    height = max(3.0, (stop_ns - invocation.time_ns) / 1e9 * PX_PER_S)
    kind = None if completion is None else completion.type
    value = completion.value if completion is not None and completion.value is not None \
        else invocation.value
    label = f"{invocation.f} {'' if invocation.key is None else invocation.key} " \
            f"{render_value(value)}"
    title = (f"process {invocation.process} @{invocation.node or '-'}\n{invocation.f} "
             f"key={invocation.key} value={render_value(invocation.value)}\n"
             f"-> {kind or 'never completed'} {render_value(value)}"
             f"{' [' + completion.error + ']' if completion and completion.error else ''}\n"
             f"{invocation.time_ns / 1e9:.3f} s .. {stop_ns / 1e9:.3f} s")
    return (f'<div class="op" style="left:{left_px}px;top:{top:.1f}px;height:{height:.1f}px;'
            f'width:{COLUMN_PX - 4}px;background:{_COLORS[kind]}" '
            f'title="{html.escape(title)}">{html.escape(label)}</div>')


def render_timeline(ops: Sequence[Op], title: str) -> str:
    client_ops = [op for op in ops if op.process != NEMESIS]
    shown = ops if len(client_ops) <= MAX_OPERATIONS * 2 else ops[: MAX_OPERATIONS * 2]
    columns = {process: number for number, process in enumerate(_column_order(shown))}
    end_ns = shown[-1].time_ns if shown else 0
    parts = []
    for process, number in columns.items():
        node = next((op.node for op in shown if op.process == process and op.node), "")
        heading = "nemesis" if process == NEMESIS else f"p{process} {node}"
        parts.append(f'<div class="head" style="left:{number * COLUMN_PX}px;'
                     f'width:{COLUMN_PX - 4}px">{html.escape(heading)}</div>')
    for invocation, completion in pairs(shown):
        parts.append(_box(invocation, completion, columns[invocation.process] * COLUMN_PX + 40,
                          end_ns))
    seconds = int(end_ns / 1e9) + 1
    step = max(1, seconds // 40)
    for second in range(0, seconds + 1, step):
        parts.append(f'<div class="tick" style="top:{second * PX_PER_S:.0f}px;'
                     f'width:{len(columns) * COLUMN_PX + 40}px">{second} s</div>')
    height = seconds * PX_PER_S + 40
    note = "" if shown is ops else (f"<p>Showing the first {MAX_OPERATIONS} operations of "
                                    f"{len(client_ops) // 2}.</p>")
    legend = "".join(f'<span style="background:{color}">{name}</span>' for name, color in
                     (("ok", _COLORS["ok"]), ("fail", _COLORS["fail"]),
                      ("info (unknown)", _COLORS["info"]), ("never completed", _COLORS[None])))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<div class='legend'>{legend}</div>{note}"
            f"<div class='frame' style='height:{height:.0f}px;"
            f"width:{len(columns) * COLUMN_PX + 60}px'>{''.join(parts)}</div></body></html>")
