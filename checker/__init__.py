"""checker: a linearizability checker in the manner of Porcupine, in pure Python.

Role: judge histories of concurrent operations against sequential models. Imports only the
standard library, its own modules and edn_format (to read Jepsen's history.edn).

Public API (everything else is internal):
  Model, Effect, Operation, Event, EventKind, Input, Output     the vocabulary
  check_operations, check_events, check_history                 the checks
  CheckResult, KeyResult, Counterexample, Verdict               the results
  read_history, History                                         history files
  MODELS, get_model                                             the built-in models
  render_html                                                   the HTML report
  main                                                          the command line
  CheckerError, HistoryError, ModelError, OperationError        bad input
"""

from checker.check import check_events, check_history, check_operations
from checker.errors import CheckerError, HistoryError, ModelError, OperationError
from checker.history import History, read_history
from checker.model import Effect, Event, EventKind, Input, Model, Operation, Output
from checker.models import MODELS, get_model
from checker.report import render_html
from checker.result import CheckResult, Counterexample, KeyResult, Verdict

__all__ = [
    "MODELS",
    "CheckResult",
    "CheckerError",
    "Counterexample",
    "Effect",
    "Event",
    "EventKind",
    "History",
    "HistoryError",
    "Input",
    "KeyResult",
    "Model",
    "ModelError",
    "Operation",
    "OperationError",
    "Output",
    "Verdict",
    "check_events",
    "check_history",
    "check_operations",
    "get_model",
    "read_history",
    "render_html",
]
