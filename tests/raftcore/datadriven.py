"""An etcd-style data-driven test runner (cockroachdb/datadriven's file format).

A test file is a sequence of directives:

    # comments start with '#'
    command arg1 key=value key2=(a,b)
    ----
    expected output, one or more lines, ending at the first blank line

Run a file with `run_file(path, handler)`: each directive's command is passed to `handler`,
whose output must equal the expected text. With the environment variable
`RAFTCORE_REWRITE=1` the file is rewritten with the actual outputs instead (review the diff
with git). Outputs must not contain blank lines (they would end the block).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REWRITE_ENV = "RAFTCORE_REWRITE"
SEPARATOR = "----"


@dataclass(frozen=True, slots=True)
class Arg:
    key: str
    values: tuple[str, ...]

    def one(self) -> str:
        assert len(self.values) == 1, f"argument {self.key} takes one value"
        return self.values[0]


@dataclass(slots=True)
class Directive:
    path: str
    line: int
    command: str
    args: list[Arg] = field(default_factory=list)
    expected: str = ""

    @property
    def pos(self) -> str:
        return f"{self.path}:{self.line}"

    def positional(self) -> list[str]:
        """Bare arguments (`cmd a b`), in order."""
        return [arg.key for arg in self.args if not arg.values]

    def get(self, key: str, default: str | None = None) -> str | None:
        for arg in self.args:
            if arg.key == key and arg.values:
                return arg.one()
        return default

    def get_list(self, key: str) -> list[str]:
        for arg in self.args:
            if arg.key == key:
                return list(arg.values)
        return []


def parse_args(tokens: list[str]) -> list[Arg]:
    args = []
    for token in tokens:
        if "=" not in token:
            args.append(Arg(token, ()))
            continue
        key, raw = token.split("=", 1)
        if raw.startswith("(") and raw.endswith(")"):
            raw = raw[1:-1]
        values = tuple(value for value in raw.split(",") if value) if raw else ()
        args.append(Arg(key, values if values else ("",)))
    return args


@dataclass(slots=True)
class _Block:
    """A directive with the raw lines around it, so a rewrite preserves comments."""

    prefix: list[str]
    command_line: str
    directive: Directive


def parse(path: Path) -> tuple[list[_Block], list[str]]:
    lines = path.read_text().split("\n")
    blocks: list[_Block] = []
    prefix: list[str] = []
    position = 0
    while position < len(lines):
        line = lines[position]
        if not line.strip() or line.startswith("#"):
            prefix.append(line)
            position += 1
            continue
        tokens = line.split()
        directive = Directive(str(path), position + 1, tokens[0], parse_args(tokens[1:]))
        position += 1
        if position >= len(lines) or lines[position] != SEPARATOR:
            raise ValueError(f"{directive.pos}: expected '{SEPARATOR}' after the command")
        position += 1
        expected: list[str] = []
        while position < len(lines) and lines[position].strip():
            expected.append(lines[position])
            position += 1
        directive.expected = "\n".join(expected)
        blocks.append(_Block(prefix, line, directive))
        prefix = []
    return blocks, prefix


def run_file(path: Path, handler: Callable[[Directive], str]) -> None:
    """Run every directive of `path`; assert or (when rewriting) record the outputs."""
    rewrite = os.environ.get(REWRITE_ENV) == "1"
    blocks, trailer = parse(path)
    out: list[str] = []
    for block in blocks:
        actual = handler(block.directive).rstrip("\n") or "ok"
        assert "\n\n" not in actual, f"{block.directive.pos}: output has a blank line"
        if not rewrite:
            assert actual == block.directive.expected, (
                f"{block.directive.pos}: {block.command_line}\n"
                f"--- expected\n{block.directive.expected}\n--- actual\n{actual}"
            )
        out.extend(block.prefix)
        out.extend([block.command_line, SEPARATOR, actual])
    if rewrite:
        text = "\n".join([*out, *trailer])
        if not text.endswith("\n"):
            text += "\n"
        path.write_text(text)
