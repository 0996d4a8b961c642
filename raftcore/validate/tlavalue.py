"""Reading the TLA+ values TLC prints (for the diagnostics of a rejected trace).

Role: Traceraft.tla's diagnostic run prints the spec's view of a node with PrintT; this
module turns that text back into Python values so the validator can say which logged
value disagrees with the spec.

Rules: records and functions become dicts, sequences lists, sets sorted lists (so they
compare with the trace's sorted node lists), strings str, integers int, booleans bool.
Text that is not a value raises ValueError.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<int>-?\d+)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)'
    r"|(?P<op><<|>>|\|->|:>|@@|[\[\]{}(),]))"
)

Value = object


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        text = text.rstrip()
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise ValueError(f"not a TLA+ value near {text[position:position + 20]!r}")
            kind = match.lastgroup
            assert kind is not None
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.at = 0

    def peek(self) -> str:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise ValueError("value ends too early")
        token = self.tokens[self.at]
        if expected is not None and token[1] != expected:
            raise ValueError(f"expected {expected!r}, found {token[1]!r}")
        self.at += 1
        return token

    def value(self) -> Value:
        kind, text = self.take()
        if kind == "str":
            return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        if kind == "int":
            return int(text)
        if kind == "word" and text in ("TRUE", "FALSE"):
            return text == "TRUE"
        if text == "<<":
            return self.items(">>")
        if text == "{":
            items = self.items("}")
            return sorted(items, key=repr)
        if text == "[":
            return self.record()
        if text == "(":
            return self.function()
        raise ValueError(f"unexpected {text!r}")

    def items(self, close: str) -> list[Value]:
        out: list[Value] = []
        while self.peek() != close:
            out.append(self.value())
            if self.peek() == ",":
                self.take(",")
        self.take(close)
        return out

    def record(self) -> dict[object, Value]:
        out: dict[object, Value] = {}
        while self.peek() != "]":
            _, name = self.take()
            self.take("|->")
            out[name] = self.value()
            if self.peek() == ",":
                self.take(",")
        self.take("]")
        return out

    def function(self) -> dict[object, Value]:
        out: dict[object, Value] = {}
        while True:
            key = self.value()
            self.take(":>")
            out[key if isinstance(key, str | int) else repr(key)] = self.value()
            if self.peek() != "@@":
                break
            self.take("@@")
        self.take(")")
        return out


def parse(text: str) -> Value:
    """One TLA+ value as TLC prints it."""
    parser = _Parser(text)
    value = parser.value()
    if parser.at != len(parser.tokens):
        raise ValueError("text after the value")
    return value


def printed_tuples(output: str, tag: str) -> list[list[Value]]:
    """Every `<<"tag", ...>>` tuple TLC printed (a value may span several lines)."""
    found: list[list[Value]] = []
    start = output.find(f'<<"{tag}"')
    while start >= 0:
        depth = 0
        end = start
        for match in re.finditer(r"<<|>>", output[start:]):
            depth += 1 if match.group() == "<<" else -1
            if depth == 0:
                end = start + match.end()
                break
        value = parse(output[start:end])
        if isinstance(value, list):
            found.append(value)
        start = output.find(f'<<"{tag}"', end)
    return found
