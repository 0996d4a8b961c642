"""`python -m jepsen serve`: browse the store over HTTP on 127.0.0.1 only.

Role: Jepsen's `serve` for this harness. `/` is the index of every run (test, time,
verdicts, links); `/<test>/<timestamp>/` is a run's page, rendered fresh from its
results.json; any other path is a file of the store, served as is (history, logs, traces,
reports, plots).

Rules:
- Binds to 127.0.0.1, never to another address: the store holds logs of the hosts.
- A path is served only if it resolves (links followed) to a file inside the store;
  anything else is 404, so `..` and links pointing out of the store lead nowhere.
- Text files (logs, histories, traces) are served as UTF-8 plain text for the browser.
"""

from __future__ import annotations

import http.server
import mimetypes
import sys
import urllib.parse
from functools import partial
from pathlib import Path
from typing import Any

from jepsen import store
from jepsen.pages import render_index, render_run_page

BIND_ADDRESS = "127.0.0.1"
_TEXT_SUFFIXES = {".txt", ".log", ".jsonl", ".json", ".edn", ".tla", ".cfg", ""}


class StoreHandler(http.server.BaseHTTPRequestHandler):
    server_version = "jepsen-serve"

    def __init__(self, *args: Any, root: Path, **kwargs: Any) -> None:
        self.root = root.resolve()
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"serve: {self.address_string()} {format % args}\n")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _html(self, text: str, status: int = 200) -> None:
        self._send(status, text.encode("utf-8"), "text/html; charset=utf-8")

    def _not_found(self) -> None:
        self._html("<!DOCTYPE html><title>not found</title><p>Not found. "
                   "<a href='/'>All runs</a></p>", 404)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path in ("", "/", "/index.html"):
            self._html(render_index(store.list_runs(self.root), str(self.root)))
            return
        target = (self.root / path.lstrip("/")).resolve()
        if not target.is_relative_to(self.root):
            self._not_found()
            return
        if target.is_dir():
            if not path.endswith("/"):
                self.send_response(301)
                self.send_header("Location", urllib.parse.quote(path) + "/")
                self.end_headers()
                return
            self._directory(target)
            return
        if not target.is_file():
            self._not_found()
            return
        self._file(target)

    def _directory(self, target: Path) -> None:
        if (target / store.HISTORY).is_file() or (target / store.TEST).is_file():
            info = store.run_info(target)
            depth = len(target.relative_to(self.root).parts)
            self._html(render_run_page(target, info.config or {}, info.results,
                                       "../" * depth))
            return
        entries = "".join(
            f"<li><a href='{urllib.parse.quote(child.name)}{'/' if child.is_dir() else ''}'>"
            f"{child.name}</a></li>" for child in sorted(target.iterdir()))
        self._html(f"<!DOCTYPE html><meta charset='utf-8'><p><a href='/'>All runs</a></p>"
                   f"<ul>{entries}</ul>")

    def _file(self, target: Path) -> None:
        if target.suffix in _TEXT_SUFFIXES:
            content_type = "text/plain; charset=utf-8"
        else:
            content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if content_type.startswith("text/"):
                content_type += "; charset=utf-8"
        self._send(200, target.read_bytes(), content_type)


def make_server(root: Path, port: int) -> http.server.ThreadingHTTPServer:
    """The store's HTTP server on 127.0.0.1:port (port 0: any free port)."""
    handler = partial(StoreHandler, root=root)
    server = http.server.ThreadingHTTPServer((BIND_ADDRESS, port), handler)
    server.daemon_threads = True
    return server


def serve_forever(root: Path, port: int) -> int:
    root.mkdir(parents=True, exist_ok=True)
    server = make_server(root, port)
    host, bound_port = server.server_address[:2]
    print(f"serving {root.resolve()} at http://{host!s}:{bound_port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
