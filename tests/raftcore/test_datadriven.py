"""Runs the data-driven scripts in testdata/ (set RAFTCORE_REWRITE=1 to regenerate)."""

from __future__ import annotations

from pathlib import Path

import pytest
from datadriven import run_file
from raftcore_interaction import InteractionEnv

TESTDATA = Path(__file__).parent / "testdata"
SCRIPTS = sorted(TESTDATA.glob("*.txt"))


def test_scripts_exist() -> None:
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script(path: Path) -> None:
    env = InteractionEnv()
    run_file(path, env.handle)
