"""A sans-I/O HTTP/1.1 request parser for the HTTP front (kvserver/httpfront.py).

Role: split a connection's byte stream into requests (method, target, version, headers,
body). It does no I/O and knows no routes.

Rules:
- Bodies come with `Content-Length` or `Transfer-Encoding: chunked` (decoded here); a
  request with both, a malformed length, an unsupported transfer coding, a header block
  over `max_head_bytes` or a body over `max_body_bytes` raises `ParseError` with the status
  to answer (the connection is then closed, since the stream can no longer be trusted).
- Header names are lower-cased; repeated headers are joined with ", " (RFC 9110 5.3).
- `Expect: 100-continue` is noted on the request head so the caller can answer it before
  the body arrives (`continue_pending`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSIONS: Final = ("HTTP/1.1", "HTTP/1.0")


class ParseError(Exception):
    """The stream cannot be parsed further; answer `status` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


@dataclass(frozen=True, slots=True)
class _Head:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    content_length: int
    chunked: bool
    expects_continue: bool


class RequestParser:
    """Feed bytes in, take complete requests out (see the module docstring)."""

    def __init__(self, max_head_bytes: int, max_body_bytes: int) -> None:
        self._max_head_bytes = max_head_bytes
        self._max_body_bytes = max_body_bytes
        self._buffer = bytearray()
        self._head: _Head | None = None
        self._continued = False

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    def continue_pending(self) -> bool:
        """True once per request whose head asked `Expect: 100-continue` and whose body
        has not arrived yet: the caller answers `100 Continue` now."""
        head = self._head
        if head is None or not head.expects_continue or self._continued:
            return False
        self._continued = True
        return True

    def next_request(self) -> Request | None:
        """The next complete request, or None until more bytes arrive."""
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > self._max_head_bytes:
                    raise ParseError(431, "the request header block is too large")
                return None
            if end > self._max_head_bytes:
                raise ParseError(431, "the request header block is too large")
            self._head = _parse_head(bytes(self._buffer[:end]), self._max_body_bytes)
            del self._buffer[: end + 4]
            self._continued = False
        head = self._head
        if head.chunked:
            body = self._take_chunked()
            if body is None:
                return None
        else:
            if len(self._buffer) < head.content_length:
                return None
            body = bytes(self._buffer[: head.content_length])
            del self._buffer[: head.content_length]
        self._head = None
        return Request(head.method, head.target, head.version, head.headers, body)

    def _take_chunked(self) -> bytes | None:
        """The decoded body if all its chunks (and trailers) are buffered, else None."""
        buffer = self._buffer
        position = 0
        parts: list[bytes] = []
        size_total = 0
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size_text = bytes(buffer[position:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ParseError(400, "malformed chunk size") from None
            if size < 0:
                raise ParseError(400, "malformed chunk size")
            position = line_end + 2
            if size == 0:
                trailer_end = buffer.find(b"\r\n", position)
                while trailer_end > position:  # skip trailer fields
                    position = trailer_end + 2
                    trailer_end = buffer.find(b"\r\n", position)
                if trailer_end < 0:
                    return None
                del buffer[: trailer_end + 2]
                return b"".join(parts)
            size_total += size
            if size_total > self._max_body_bytes:
                raise ParseError(413, "the request body is too large")
            if len(buffer) < position + size + 2:
                return None
            if buffer[position + size : position + size + 2] != b"\r\n":
                raise ParseError(400, "malformed chunk")
            parts.append(bytes(buffer[position : position + size]))
            position += size + 2


def _parse_head(raw: bytes, max_body_bytes: int) -> _Head:
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1]:
        raise ParseError(400, "malformed request line")
    method, target, version = parts
    if version not in _VERSIONS:
        raise ParseError(505, f"unsupported HTTP version {version[:20]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            raise ParseError(400, "malformed header line")
        name = name.lower()
        value = value.strip(" \t")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    chunked = False
    length = 0
    coding = headers.get("transfer-encoding")
    if coding is not None:
        if coding.strip().lower() != "chunked":
            raise ParseError(501, f"unsupported transfer coding {coding[:40]!r}")
        if "content-length" in headers:
            raise ParseError(400, "both Content-Length and Transfer-Encoding")
        chunked = True
    elif "content-length" in headers:
        text = headers["content-length"].strip()
        if not text.isascii() or not text.isdigit() or len(text) > 18:
            raise ParseError(400, "malformed Content-Length")
        length = int(text)
        if length > max_body_bytes:
            raise ParseError(413, "the request body is too large")
    expects = headers.get("expect", "").strip().lower() == "100-continue"
    return _Head(method, target, version, headers, length, chunked, expects)
