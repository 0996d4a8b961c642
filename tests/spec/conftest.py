"""Fixtures of the spec tests (helpers live in spec_support.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from spec_support import REPORT, SPEC_DIR


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show the action-coverage table of trace validation even when output is captured."""
    for line in REPORT:
        terminalreporter.write_line(line)


@pytest.fixture
def model_folder(tmp_path: Path) -> Callable[[str], Path]:
    """A folder holding the spec's modules and the named .cfg, ready for TLC."""

    def make(cfg: str) -> Path:
        for source in SPEC_DIR.glob("*.tla"):
            if source.name != "TraceData.tla":
                shutil.copyfile(source, tmp_path / source.name)
        shutil.copyfile(SPEC_DIR / cfg, tmp_path / cfg)
        return tmp_path

    return make
