"""Wheels for the nodes: the project and every dependency, built on the control node.

Role: nodes install kvserver with `pip install --no-index --find-links DIR`, so they never
reach a package index; everything they install is built (or fetched) here first, by the
control node's pip, and uploaded.

Theory of operation: the dependency wheels change only when pyproject.toml does, so they
are built once into `<cache>/deps-<hash of pyproject.toml>` and reused; the project wheel
changes with every edit, so it is built afresh (`--no-deps`, a few seconds) for each run.
`WheelSet.deps_key` names the dependency set, so a node can keep a venv per set and only
reinstall the project wheel.

Rules: a failed build raises `WheelBuildError` with pip's last lines; a half-built
dependency folder is never used (it is built under a temporary name and renamed).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "RAFTKV_JEPSEN_CACHE"
PROJECT_NAME = "raftkv"


class WheelBuildError(Exception):
    """pip could not build the wheels; carries the end of its output."""


@dataclass(frozen=True, slots=True)
class WheelSet:
    deps_dir: Path
    deps_key: str
    project_wheel: Path

    @property
    def dependency_wheels(self) -> list[Path]:
        return sorted(self.deps_dir.glob("*.whl"))


def project_root() -> Path:
    """The checkout the harness runs from (the folder holding pyproject.toml)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise WheelBuildError(f"no pyproject.toml above {Path(__file__).parent}: run the "
                              "harness from a checkout of the project")
    return root


def default_cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "raftkv-jepsen"


def _pip_wheel(args: list[str], what: str) -> None:
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", *args]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if completed.returncode != 0:
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-15:])
        raise WheelBuildError(f"building {what} failed ({' '.join(command)}):\n{tail}")


def deps_key(root: Path) -> str:
    digest = hashlib.sha256((root / "pyproject.toml").read_bytes())
    digest.update(sys.version.split()[0].encode())
    return digest.hexdigest()[:16]


def build(root: Path | None = None, cache_dir: Path | None = None) -> WheelSet:
    """Build (or reuse) the dependency wheels and build a fresh project wheel."""
    root = root or project_root()
    cache_dir = cache_dir or default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = deps_key(root)
    deps_dir = cache_dir / f"deps-{key}"
    if not deps_dir.is_dir():
        staging = Path(tempfile.mkdtemp(prefix="deps-", dir=cache_dir))
        try:
            _pip_wheel([str(root), "-w", str(staging)], "the dependency wheels")
            for wheel in staging.glob(f"{PROJECT_NAME}-*.whl"):
                wheel.unlink()
            staging.rename(deps_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    project_dir = Path(tempfile.mkdtemp(prefix="project-", dir=cache_dir))
    _pip_wheel([str(root), "--no-deps", "-w", str(project_dir)], "the project wheel")
    wheels = sorted(project_dir.glob(f"{PROJECT_NAME}-*.whl"))
    if len(wheels) != 1:
        raise WheelBuildError(f"expected one {PROJECT_NAME} wheel in {project_dir}, "
                              f"found {[w.name for w in wheels]}")
    return WheelSet(deps_dir, key, wheels[0])
