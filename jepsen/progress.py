"""The progress display: phase, elapsed and remaining time, operations done, current fault.

Role: a daemon thread that prints one status line while a run goes on. On a terminal the
line is redrawn in place every `interval_s`; otherwise (CI logs) a new line is printed
every `log_interval_s`, so logs stay short.

Rules: it only reads `RunState`; it never blocks the run; `stop()` clears the line.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from jepsen.core import RunState


def status_line(state: RunState, now_s: float) -> str:
    """`[run] 12s elapsed, 48s left | 1,234 ops | fault: partition-halves`."""
    elapsed_s = now_s - state.started_s
    parts = [f"[{state.phase}] {elapsed_s:5.0f} s elapsed"]
    if state.phase == "run" and state.run_started_s is not None:
        left_s = max(0.0, state.time_limit_s - (now_s - state.run_started_s))
        parts[0] += f", {left_s:3.0f} s left"
    parts.append(f"{state.ops_done():,} ops")
    parts.append(f"fault: {state.fault}")
    return " | ".join(parts)


class Progress:
    def __init__(self, state: RunState, stream: TextIO | None = None, interval_s: float = 1.0,
                 log_interval_s: float = 10.0) -> None:
        self._state = state
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._interval_s = interval_s if self._tty else log_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            line = status_line(self._state, time.monotonic())
            if self._tty:
                self._stream.write("\r\x1b[2K" + line)
            else:
                self._stream.write(line + "\n")
            self._stream.flush()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self._tty:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()
