"""`jepsen serve` in a real browser: headless Chromium opens the index of a store holding a
valid and an invalid run, follows the link to a run's page, and finds what a person looks
for there: the verdict, each check's verdict, the plots, the timeline and history links.

An integration test (a real port on 127.0.0.1, a browser process); skipped with a reason
when /usr/bin/chromium is missing (tests/system-deps.sh installs it where root).
"""

from __future__ import annotations

import html.parser
import io
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from jepsen import runcmd, schedule, serve
from jepsen.core import TestConfig as Config
from jepsen.memdb import MemoryDB

CHROMIUM = Path("/usr/bin/chromium")
NODES = ("n1", "n2", "n3")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's chromium at /usr/bin/chromium")


class Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]))
        if tag == "img" and values.get("src"):
            self.images.append(str(values["src"]))


def parse(dom: str) -> Links:
    parser = Links()
    parser.feed(dom)
    return parser


def chromium(args: list[str], profile: Path) -> str:
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=True)
    return done.stdout


def store_with_runs(root: Path) -> None:
    for name, stale in (("good", False), ("broken", True)):
        config = Config(name=name, workload="register", nodes=NODES,
                        faults=schedule.parse_faults("kill", 3), nemesis_spec="kill",
                        nemesis_interval_s=0.3, concurrency=6, rate=300.0, time_limit_s=1.0,
                        ops_per_key=50, threads_per_key=3, seed=1, db_kind="memory")
        runcmd.execute(config, MemoryDB(NODES, 1, stale=stale), root, show_progress=False,
                       out=io.StringIO())


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "store"
    store_with_runs(root)
    server = serve.make_server(root, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_index_and_run_page_in_headless_chromium(served: str, tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    index = chromium(["--dump-dom", served + "/"], profile)
    assert "Jepsen runs in" in index
    assert "2 run(s)" in index
    assert "good" in index
    assert "broken" in index
    assert "INVALID" in index, "the stale run's verdict is on the index"
    assert "valid" in index
    run_links = [link for link in parse(index).links if link.startswith("good/")
                 and link.endswith("/")]
    assert run_links, "the index links to the good run's page"

    page = chromium(["--dump-dom", f"{served}/{run_links[0]}"], profile)
    assert "Verdict: valid" in page
    for check in ("linearizable", "liveness", "stats"):
        assert f"<td>{check}</td>" in page
    parsed = parse(page)
    assert {"latency-raw.png", "latency-quantiles.png", "rate.png"} <= set(parsed.images)
    assert "timeline.html" in parsed.links
    assert "history.txt" in parsed.links
    for image in parsed.images:
        with urllib.request.urlopen(f"{served}/{run_links[0]}{image}") as answer:
            assert answer.headers["Content-Type"] == "image/png"
            assert answer.read(8) == b"\x89PNG\r\n\x1a\n"

    shot = tmp_path / "page.png"
    chromium([f"--screenshot={shot}", "--window-size=1200,900", f"{served}/{run_links[0]}"],
             profile)
    assert shot.stat().st_size > 10_000, "the page renders into a real picture"

    broken = [link for link in parse(index).links if link.startswith("broken/")
              and link.endswith("/")]
    broken_page = chromium(["--dump-dom", f"{served}/{broken[0]}"], profile)
    assert "Verdict: INVALID" in broken_page
    assert "linearizability report" in broken_page


def test_serve_refuses_paths_outside_the_store(served: str) -> None:
    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/nothing-here"):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(served + path)
        assert caught.value.code == 404
    with urllib.request.urlopen(served + "/latest/history.txt") as answer:
        assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_serve_binds_to_loopback_only(tmp_path: Path) -> None:
    server = serve.make_server(tmp_path, 0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()
