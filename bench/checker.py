"""Benchmark of the linearizability checker: `python -m bench.checker`.

Times the check (CPU time, best of --runs) of every history in ../shared/histories, prints
per-history figures and the totals the issue compares with Porcupine, then checks a
generated harness-like history of 100,000 operations on 100 keys end to end (parse and
check). Porcupine's figures are the issue's quoted reference numbers (Go, GOMAXPROCS=1, on
this machine), not measured here: Go is not installed.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from checker import check_history, get_model, read_history

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "histories"
PORCUPINE_MS = {"etcd (all 102)": 340.0, "etcd_002": 136.0, "etcd_007": 88.0, "c50-ok": 143.0}


def best_cpu_ms(fn: Any, runs: int) -> float:
    """The smallest CPU time of `runs` calls of fn, in milliseconds."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best * 1000


def corpus(runs: int) -> dict[str, float]:
    """Per-history best CPU ms of the check (parsing excluded, as in Porcupine's tests)."""
    manifest = json.loads((CORPUS / "manifest.json").read_text())
    figures: dict[str, float] = {}
    print(f"{'history':12} {'model':18} {'ops':>6} {'expected':>9} {'verdict':>8} {'cpu ms':>8}")
    for entry in manifest["histories"]:
        history = read_history(CORPUS / entry["file"])
        model = get_model(entry["model"])
        result = check_history(model, history)
        expected = "ok" if entry["expected_linearizable"] else "illegal"
        assert result.verdict.value == expected, entry["name"]
        ms = best_cpu_ms(lambda h=history, m=model: check_history(m, h), runs)
        figures[entry["name"]] = ms
        print(f"{entry['name']:12} {entry['model']:18} {len(history.operations):>6} "
              f"{expected:>9} {result.verdict.value:>8} {ms:>8.2f}")
    return figures


def harness_history(op_count: int, key_count: int, process_count: int, seed: int) -> str:
    """JSONL of a register workload (read / write / cas per key) from a sequential run.

    Each operation takes effect at a point inside its interval; 1% end in `info` (half of
    those took effect) and their process is replaced by a fresh one, as in the harness.
    """
    rng = random.Random(seed)
    ops: list[dict[str, Any]] = []
    clock = [rng.uniform(0, 5) for _ in range(process_count)]
    ids = list(range(process_count))
    next_id = process_count
    for _ in range(op_count):
        slot = min(range(process_count), key=clock.__getitem__)
        call = clock[slot]
        point = call + rng.expovariate(1.0)
        ret = point + rng.expovariate(1.0)
        f = rng.choice(("read", "read", "write", "cas"))
        value = {"read": None, "write": rng.randrange(5),
                 "cas": [rng.randrange(5), rng.randrange(5)]}[f]
        info = rng.random() < 0.01
        ops.append({"process": ids[slot], "f": f, "key": str(rng.randrange(key_count)),
                    "value": value, "call": call, "point": point, "ret": ret, "info": info,
                    "applies": rng.random() < 0.5})
        clock[slot] = ret + rng.uniform(0, 0.5)
        if info:
            ids[slot] = next_id
            next_id += 1
    return _events(ops)


def _events(ops: list[dict[str, Any]]) -> str:
    state: dict[str, Any] = {}
    for op in sorted(ops, key=lambda o: o["point"]):
        key, current = op["key"], state.get(op["key"])
        if op["f"] == "read":
            op["info"], op["out"], op["type"] = False, current, "ok"
        elif op["info"]:
            op["out"], op["type"] = op["value"], "info"
            if op["applies"] and (op["f"] == "write" or current == op["value"][0]):
                state[key] = op["value"] if op["f"] == "write" else op["value"][1]
        elif op["f"] == "write":
            op["out"], op["type"], state[key] = op["value"], "ok", op["value"]
        else:
            ok = current == op["value"][0]
            op["out"], op["type"] = op["value"], "ok" if ok else "fail"
            if ok:
                state[key] = op["value"][1]
    events = []
    for op in ops:
        common = {"process": op["process"], "f": op["f"], "key": op["key"]}
        events.append((op["call"], {"type": "invoke", **common, "value": op["value"]}))
        events.append((op["ret"], {"type": op["type"], **common, "value": op["out"]}))
    events.sort(key=lambda e: e[0])
    return "".join(json.dumps({**e, "time": round(t * 1e6)}) + "\n" for t, e in events)


def large(op_count: int, runs: int) -> None:
    text = harness_history(op_count, 100, 50, seed=1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.jsonl"
        path.write_text(text)
        model = get_model("cas-register")
        result = check_history(model, path)
        assert result.ok, result.summary()
        parse_ms = best_cpu_ms(lambda: read_history(path), runs)
        total_ms = best_cpu_ms(lambda: check_history(model, path), runs)
    print(f"\ngenerated register history: {op_count} operations, 100 keys, 50 processes: "
          f"{result.verdict.value}; parse {parse_ms / 1000:.2f} s, parse + check "
          f"{total_ms / 1000:.2f} s CPU (best of {runs})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per history (best taken)")
    parser.add_argument("--large-ops", type=int, default=100_000)
    args = parser.parse_args()
    figures = corpus(args.runs)
    etcd = sum(ms for name, ms in figures.items() if name.startswith("etcd"))
    count = sum(1 for name in figures if name.startswith("etcd"))
    print(f"\n{'figure':34} {'checker ms':>11} {'Porcupine ms (quoted)':>22}")
    print(f"{f'etcd, the {count} histories here':34} {etcd:>11.1f} "
          f"{PORCUPINE_MS['etcd (all 102)']:>16.0f} (all 102)")
    for name in ("etcd_002", "etcd_007", "c50-ok"):
        ours = f"{figures[name]:.1f}" if name in figures else "not in corpus"
        print(f"{name:34} {ours:>11} {PORCUPINE_MS[name]:>22.0f}")
    print(f"{'all corpus histories':34} {sum(figures.values()):>11.1f}")
    large(args.large_ops, max(1, min(args.runs, 2)))


if __name__ == "__main__":
    main()
