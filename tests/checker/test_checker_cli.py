"""The command line: exit codes 0 / 1 / 2, model lookup, reports, errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from checker_gen import CORPUS

from checker.cli import main

GOOD = [
    {"type": "invoke", "process": 0, "f": "write", "key": "x", "value": 1},
    {"type": "ok", "process": 0, "f": "write", "key": "x", "value": 1},
    {"type": "invoke", "process": 1, "f": "read", "key": "x", "value": None},
    {"type": "ok", "process": 1, "f": "read", "key": "x", "value": 1},
]


def write_jsonl(path: Path, events: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_exit_0_when_linearizable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = write_jsonl(tmp_path / "h.jsonl", GOOD)
    assert main([str(history), "--model", "cas-register"]) == 0
    assert ": cas-register: ok:" in capsys.readouterr().out


def test_exit_1_with_a_counterexample(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    bad = [*GOOD[:3], {**GOOD[3], "value": 2}]
    history = write_jsonl(tmp_path / "h.jsonl", bad)
    report = tmp_path / "report.html"
    assert main([str(history), "--model", "register", "--html", str(report)]) == 1
    out = capsys.readouterr().out
    assert "key 'x' is not linearizable" in out
    assert "read -> 2  [illegal in this state]" in out
    assert report.read_text().startswith("<!DOCTYPE html>")


def test_exit_2_on_malformed_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / "h.jsonl"
    history.write_text(json.dumps(GOOD[0]) + "\n{oops\n")
    assert main([str(history), "--model", "kv"]) == 2
    assert f"error: {history}:2: not valid JSON" in capsys.readouterr().err


def test_exit_2_when_no_model_is_known(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    history = write_jsonl(tmp_path / "h.jsonl", GOOD)
    assert main([str(history)]) == 2
    assert "no model given; pass --model" in capsys.readouterr().err


def test_exit_2_when_the_time_budget_runs_out(tmp_path: Path) -> None:
    events: list[dict[str, object]] = []
    for p in range(30):
        events.append({"type": "invoke", "process": p, "f": "write", "value": p})
    events.append({"type": "invoke", "process": 99, "f": "read", "value": None})
    events.append({"type": "ok", "process": 99, "f": "read", "value": 1000})
    history = write_jsonl(tmp_path / "h.jsonl", events)
    assert main([str(history), "--model", "cas-register", "--timeout", "0"]) == 2


def test_model_from_the_header_line(tmp_path: Path) -> None:
    history = write_jsonl(tmp_path / "h.jsonl", [{"type": "header", "model": "kv"}, *[
        {**e, "f": {"write": "put", "read": "get"}[str(e["f"])]} for e in GOOD]])
    assert main([str(history)]) == 0


def test_model_from_a_manifest_above(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    history = write_jsonl(tmp_path / "sub" / "h7.jsonl", GOOD)
    manifest = {"histories": [{"name": "h7", "file": "sub/h7.jsonl", "model": "register"}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert main([str(history)]) == 0


def test_a_corrupt_manifest_is_an_error(tmp_path: Path) -> None:
    history = write_jsonl(tmp_path / "h.jsonl", GOOD)
    (tmp_path / "manifest.json").write_text("{not json")
    assert main([str(history)]) == 2


@pytest.mark.skipif(not (CORPUS / "manifest.json").is_file(), reason="corpus not present")
@pytest.mark.parametrize(("name", "code"), [("etcd/etcd_002.jsonl", 0),
                                            ("etcd/etcd_000.jsonl", 1),
                                            ("kv/c10-bad.jsonl", 1)])
def test_python_dash_m_on_the_corpus_uses_its_manifest(name: str, code: int) -> None:
    done = subprocess.run([sys.executable, "-m", "checker", str(CORPUS / name)],
                          capture_output=True, text=True, check=False,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == code, done.stderr
