"""The store: where runs keep their results, laid out as Jepsen's `store/` is.

Role: make a run's folder, keep the `latest` links current, find runs again (`analyze -1`,
`serve`). Shaped after jepsen-io/jepsen `store.clj`:

    store/
      latest -> <test-name>/<timestamp>          the newest run of any test
      <test-name>/
        latest -> <timestamp>                    the newest run of this test
        <timestamp>/                             one run (20240131T235959.123)
          test.json  history.jsonl  history.txt  results.json  jepsen.log
          linearizability.html  timeline.html  latency-raw.png  latency-quantiles.png
          rate.png  index.html  <node>/ (node.log, trace.jsonl)

Rules:
- Links are relative, so a store folder can be moved or copied whole.
- A link is replaced atomically (made under a temporary name, then renamed over).
- Test names are made safe for paths: letters, digits, '-', '_', '.' and ','; anything
  else becomes '-'.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_STORE = Path("store")
LATEST = "latest"
RESULTS = "results.json"
TEST = "test.json"
HISTORY = "history.jsonl"
_SAFE = re.compile(r"[^A-Za-z0-9_.,-]+")
_TIMESTAMP = re.compile(r"^\d{8}T\d{6}\.\d{3}$")


class StoreError(Exception):
    """A run cannot be found or its folder cannot be made."""


def safe_name(name: str) -> str:
    cleaned = _SAFE.sub("-", name).strip("-.")
    return cleaned or "test"


def timestamp(now_s: float | None = None) -> str:
    now_s = time.time() if now_s is None else now_s
    millis = int((now_s - int(now_s)) * 1000)
    return time.strftime("%Y%m%dT%H%M%S", time.localtime(now_s)) + f".{millis:03d}"


def _link(link: Path, target: str) -> None:
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(target)
    temporary.replace(link)


def new_run_dir(root: Path, test_name: str, now_s: float | None = None) -> Path:
    """Make store/<test>/<timestamp>/ and point both `latest` links at it."""
    name = safe_name(test_name)
    stamp = timestamp(now_s)
    run_dir = root / name / stamp
    suffix = 1
    while run_dir.exists():
        run_dir = root / name / f"{stamp}-{suffix}"
        suffix += 1
    try:
        run_dir.mkdir(parents=True)
        _link(root / name / LATEST, run_dir.name)
        _link(root / LATEST, f"{name}/{run_dir.name}")
    except OSError as error:
        raise StoreError(f"cannot make the run folder {run_dir}: {error}") from error
    return run_dir


@dataclass(frozen=True, slots=True)
class RunInfo:
    test: str
    stamp: str
    path: Path
    results: dict[str, Any] | None
    config: dict[str, Any] | None

    @property
    def valid(self) -> Any:
        return None if self.results is None else self.results.get("valid")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def run_info(run_dir: Path) -> RunInfo:
    return RunInfo(run_dir.parent.name, run_dir.name, run_dir,
                   _read_json(run_dir / RESULTS), _read_json(run_dir / TEST))


def list_runs(root: Path) -> list[RunInfo]:
    """Every run in the store, newest first."""
    runs: list[RunInfo] = []
    if not root.is_dir():
        return runs
    for test_dir in sorted(root.iterdir()):
        if test_dir.is_symlink() or not test_dir.is_dir():
            continue
        for run_dir in test_dir.iterdir():
            if run_dir.is_symlink() or not run_dir.is_dir():
                continue
            if (run_dir / HISTORY).is_file() or (run_dir / TEST).is_file():
                runs.append(run_info(run_dir))
    runs.sort(key=lambda r: (r.stamp, r.test), reverse=True)
    return runs


def resolve_run(root: Path, spec: str | None) -> Path:
    """A run folder from `analyze`'s argument: a path, or -N (the Nth newest; -1 latest)."""
    if spec is None or re.fullmatch(r"-\d+", spec):
        number = 1 if spec is None else int(spec[1:])
        runs = list_runs(root)
        if number < 1 or number > len(runs):
            raise StoreError(f"no run {spec or '-1'} in {root} ({len(runs)} run(s) stored)")
        return runs[number - 1].path
    path = Path(spec)
    if path.is_file():
        path = path.parent
    if not (path / HISTORY).is_file():
        raise StoreError(f"{path} holds no {HISTORY}: not a stored run")
    return path.resolve()
