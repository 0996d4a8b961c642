"""The command line: `python -m checker HISTORY [--model M] [--format F] [--html OUT] ...`.

Role: read a history, pick its model, check it, print the verdict (and a counterexample for
an illegal key), optionally write the HTML report.

Rules: exit 0 linearizable, 1 not linearizable, 2 unknown or bad input (Jepsen's codes).
The model is `--model`, else the history's own header line, else the manifest.json found
in the history's folder or a folder above it (an entry whose `file` is this history, or
whose `name` is its file name without suffix). Errors name the file and line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from checker.check import check_history
from checker.errors import CheckerError, ModelError
from checker.history import FORMATS, History, read_history
from checker.models import MODELS, get_model
from checker.report import render_html
from checker.result import CheckResult, KeyResult, Verdict

EXIT_OK, EXIT_ILLEGAL, EXIT_UNKNOWN = 0, 1, 2


def manifest_model(history_path: Path) -> str | None:
    """The model a manifest.json beside or above the history names for it, if any."""
    target = history_path.resolve()
    for folder in target.parents:
        manifest = folder / "manifest.json"
        if not manifest.is_file():
            continue
        try:
            entries = json.loads(manifest.read_text(encoding="utf-8"))["histories"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ModelError(f"{manifest}: not a readable manifest ({err})") from None
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            file = entry.get("file")
            named = isinstance(file, str) and (folder / file).resolve() == target
            if named or entry.get("name") == target.stem:
                model = entry.get("model")
                return model if isinstance(model, str) else None
    return None


def resolve_model(history: History, explicit: str | None) -> str:
    """The model name from the flag, the history's header, or a manifest; else an error."""
    name = explicit or history.model_name or manifest_model(Path(history.path))
    if name is None:
        raise ModelError(f"{history.path}: no model given; pass --model "
                         f"({', '.join(sorted(MODELS))})")
    return name


def describe_key(result: CheckResult, key: KeyResult) -> list[str]:
    """Lines explaining one illegal key: the prefix, the state, the unplaced operations."""
    model, ops = result.model, result.operations
    example = key.counterexample
    assert example is not None
    name = "the single object" if key.key is None else f"key {key.key!r}"
    lines = [f"{name} is not linearizable ({len(key.operations)} operations)."]
    lines.append(f"  longest linearizable prefix found: {len(example.prefix)} operations")
    for position, state in list(zip(example.prefix, example.prefix_states, strict=True))[-5:]:
        op = ops[position]
        lines.append(f"    p{op.client_id} {model.describe_operation(op.input, op.output)}"
                     f"  => {model.describe_state(state)}")
    lines.append(f"  then, in state {model.describe_state(example.state)}, no operation "
                 "that could come next leads to a linearization:")
    for position in example.unplaced:
        op = ops[position]
        legal, _ = model.step(example.state, op.input, op.output)
        why = "explored, dead end" if legal else "illegal in this state"
        mark = "  (returns first)" if position == example.blocking else ""
        lines.append(f"    p{op.client_id} {model.describe_operation(op.input, op.output)}"
                     f"  [{why}]{mark}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m checker", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("history", type=Path, help="the history file")
    parser.add_argument("--model", choices=sorted(MODELS), help="the model to check against")
    parser.add_argument("--format", choices=FORMATS, help="the history format (default: "
                        "from the file name or its first line)")
    parser.add_argument("--html", type=Path, help="write the HTML report to this file")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="give up after S seconds of search (verdict unknown)")
    args = parser.parse_args(argv)
    try:
        history = read_history(args.history, args.format)
        model = get_model(resolve_model(history, args.model))
        result = check_history(model, history, timeout_s=args.timeout)
    except CheckerError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_UNKNOWN
    print(f"{history.path}: {model.name}: {result.summary()}")
    for key in result.illegal_keys:
        print("\n".join(describe_key(result, key)))
    reasons: dict[str, int] = {}
    for key in result.keys:
        if key.verdict is Verdict.UNKNOWN:
            reasons[key.reason] = reasons.get(key.reason, 0) + 1
    for reason, count in reasons.items():
        print(f"{count} key(s) unknown: {reason}")
    if args.html is not None:
        args.html.write_text(render_html(result, title=str(args.history)), encoding="utf-8")
        print(f"report: {args.html}")
    return {Verdict.OK: EXIT_OK, Verdict.ILLEGAL: EXIT_ILLEGAL}.get(result.verdict, EXIT_UNKNOWN)
