"""Operating errors of the checker, in one tree.

    CheckerError                 anything the checker refuses to judge
    +-- HistoryError             a malformed history file (names the line and the fault)
    +-- ModelError               an unknown model name, or a history the model cannot read
        +-- OperationError       one operation the model does not understand

Rules: every message says what is wrong and where; nothing is guessed. Programmer errors
(wrong argument types from Python callers) are assertions, not these.
"""

from __future__ import annotations


class CheckerError(Exception):
    """Base of every error the checker raises on bad input."""


class HistoryError(CheckerError):
    """A malformed history: `line` is 1-based (0 when the fault is not on one line)."""

    def __init__(self, path: str, line: int, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line > 0 else path
        super().__init__(f"{where}: {problem}")


class ModelError(CheckerError):
    """An unknown model, or a model that cannot judge the given history."""


class OperationError(ModelError):
    """A model was given an operation it does not understand (unknown f, bad value shape)."""
