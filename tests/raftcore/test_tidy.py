"""Tidy: raftcore/ must stay pure. Parses every module with `ast` and fails on a banned
import (I/O, clocks, threads, sockets) or on module-level use of the global `random`.

One folder is exempt: raftcore/validate/ is the `python -m raftcore.validate` command, which
writes TLC's inputs and runs Java. It is a tool beside the core, not part of it, so the rule
for it is the reverse one: no module of the pure core may import it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RAFTCORE = Path(__file__).resolve().parents[2] / "raftcore"
BANNED_MODULES = {
    "asyncio",
    "os",
    "socket",
    "threading",
    "time",
    "multiprocessing",
    "subprocess",
    "selectors",
    "signal",
    "concurrent",
    "datetime",
    "secrets",
    "uuid",
}
# `random` may be imported only for the `random.Random` type handed in; calling the
# module-level functions (random.random(), random.choice(), ...) is banned everywhere.
RANDOM_ALLOWED_ATTRIBUTES = {"Random"}


TOOLS = RAFTCORE / "validate"


def _modules() -> list[Path]:
    return sorted(p for p in RAFTCORE.rglob("*.py") if TOOLS not in p.parents)


def imports_validate(source: str, filename: str) -> bool:
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            a.name.startswith("raftcore.validate") for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "raftcore.validate"
        ):
            return True
    return False


def violations(source: str, filename: str) -> list[str]:
    tree = ast.parse(source, filename)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in BANNED_MODULES:
                    found.append(f"{filename}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            root = node.module.split(".")[0]
            if root in BANNED_MODULES:
                found.append(f"{filename}:{node.lineno}: from {node.module} import ...")
            if root == "random":
                for alias in node.names:
                    if alias.name not in RANDOM_ALLOWED_ATTRIBUTES:
                        found.append(f"{filename}:{node.lineno}: from random import {alias.name}")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "random"
            and node.attr not in RANDOM_ALLOWED_ATTRIBUTES
        ):
            found.append(f"{filename}:{node.lineno}: random.{node.attr} (global randomness)")
    return found


def test_there_are_modules_to_check() -> None:
    assert len(_modules()) >= 15


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(RAFTCORE)))
def test_module_is_pure(path: Path) -> None:
    assert violations(path.read_text(), str(path)) == []
    assert not imports_validate(path.read_text(), str(path)), "the core imports a tool"


def test_the_validate_tool_is_the_only_exempt_folder() -> None:
    exempt = {p for p in RAFTCORE.rglob("*.py") if TOOLS in p.parents}
    assert all(p.parent == TOOLS for p in exempt)
    # Negative control: an import of the tool from the core is seen.
    assert imports_validate("from raftcore.validate import tlc\n", "example.py")


@pytest.mark.parametrize(
    "source",
    [
        "import time\n",
        "import os.path\n",
        "from asyncio import sleep\n",
        "import threading as t\n",
        "from socket import socket\n",
        "import random\nx = random.random()\n",
        "from random import choice\n",
        "def f():\n    import time\n",
    ],
)
def test_tidy_catches_banned_code(source: str) -> None:
    # The negative control: each of these must be reported.
    assert violations(source, "example.py")


def test_tidy_allows_seeded_random() -> None:
    assert violations("import random\nrng = random.Random(7)\n", "example.py") == []
