"""Command line: `python -m kvserver --id n1 --http HOST:PORT --raft HOST:PORT DATA_DIR`.

Role: parse flags (hraftd-style), set up logging (raftd-style -v / --debug / --trace-raft),
start the node and its HTTP API, join a cluster when asked, and exit cleanly on SIGTERM
or SIGINT. An empty DATA_DIR without --join bootstraps a one-node cluster; a DATA_DIR with
state rejoins its cluster with no --join needed.

Exit codes: 0 after a signal, 1 when the node fails (a storage error, a corrupt record),
2 for bad flags.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from kvserver.addresses import split_address
from kvserver.diskstorage import FsyncMode
from kvserver.errors import ConfigError, KvServerError
from kvserver.http import LATENCY_KEY, LIMITS_KEY, make_app
from kvserver.httpfront import make_front
from kvserver.node import PLANTED_ACK_BEFORE_PERSIST, KvNode, NodeOptions

try:
    import uvloop  # type: ignore[import-not-found, unused-ignore]  # optional speed-up
except ImportError:
    HAVE_UVLOOP = False
else:
    HAVE_UVLOOP = True

log = logging.getLogger("kvserver")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kvserver", description=__doc__.split("\n")[0])
    parser.add_argument("--id", required=True, help="this node's id, e.g. n1")
    parser.add_argument("--http", default="127.0.0.1:11000", help="HTTP API HOST:PORT")
    parser.add_argument("--raft", default="127.0.0.1:12000", help="peer transport HOST:PORT")
    parser.add_argument("--join", help="HTTP HOST:PORT of any member to join through")
    parser.add_argument("data_dir", metavar="DATA_DIR", type=Path)
    parser.add_argument("--cluster-secret", default=os.environ.get("RAFTKV_CLUSTER_SECRET"),
                        help="shared secret authenticating peer messages "
                             "(default: $RAFTKV_CLUSTER_SECRET)")
    parser.add_argument("--fsync", choices=[m.value for m in FsyncMode], default="always")
    parser.add_argument("--trace", type=Path, help="write trace events (NDJSON) to FILE")
    parser.add_argument("--tick-ms", type=float, default=50.0)
    parser.add_argument("--election-ticks", type=int, default=10)
    parser.add_argument("--snapshot-entries", type=int, default=10_000,
                        help="compact the log once this many entries are applied past it")
    parser.add_argument("--request-timeout-s", type=float, default=5.0)
    parser.add_argument("--session-timeout-s", type=float, default=600.0)
    parser.add_argument("--lease-reads", action="store_true",
                        help="serve reads from the leader lease instead of a heartbeat round")
    parser.add_argument("--http-server", choices=["front", "aiohttp"], default="front",
                        help="front: the fast HTTP front (kvserver/httpfront.py) before the "
                             "aiohttp application; aiohttp: the application alone")
    parser.add_argument("--event-loop", choices=["auto", "asyncio", "uvloop"], default="auto",
                        help="auto: uvloop when it is installed")
    parser.add_argument("--log-level", default="WARNING",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
    parser.add_argument("-v", action="store_true", help="verbose (INFO)")
    parser.add_argument("--debug", action="store_true", help="debug logging")
    parser.add_argument("--trace-raft", action="store_true",
                        help="log every Ready batch the core hands out")
    parser.add_argument("--planted-bug", choices=[PLANTED_ACK_BEFORE_PERSIST],
                        help=argparse.SUPPRESS)  # Test-only negative controls.
    return parser.parse_args(argv)


def setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.INFO if args.v else args.log_level
    logging.basicConfig(level=level, stream=sys.stderr,
                        format=f"%(asctime)s {args.id} %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kvserver.raft").setLevel(
        logging.DEBUG if args.trace_raft else logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def options_from(args: argparse.Namespace) -> NodeOptions:
    if not args.cluster_secret:
        raise ConfigError("a cluster secret is required (--cluster-secret or "
                          "$RAFTKV_CLUSTER_SECRET)")
    split_address(args.http)
    split_address(args.raft)
    return NodeOptions(
        node_id=args.id, raft_address=args.raft, http_address=args.http,
        data_dir=args.data_dir, cluster_secret=args.cluster_secret.encode(), join=args.join,
        fsync=FsyncMode(args.fsync), trace_path=args.trace, tick_s=args.tick_ms / 1000,
        election_timeout_ticks=args.election_ticks, snapshot_entries=args.snapshot_entries,
        request_timeout_s=args.request_timeout_s, session_timeout_s=args.session_timeout_s,
        lease_reads=args.lease_reads, planted_bug=args.planted_bug,
    )


async def join_cluster(node: KvNode, join_address: str) -> None:
    """POST /cluster/join to a member until the leader has added this node as a learner."""
    url = f"http://{join_address}/cluster/join"
    body = {"id": node.node_id, "raft": node.raft_address, "http": node.http_address}
    delay_s = 0.1
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.post(url, json=body,
                                        timeout=aiohttp.ClientTimeout(total=10)) as response:
                    doc = await response.json(content_type=None)
                    if response.status == 200:
                        peers = doc.get("peers", {})
                        node.learn_peers({k: (v["raft"], v.get("http")) for k, v in peers.items()})
                        log.info("joined the cluster through %s", join_address)
                        return
                    log.warning("join through %s answered %d: %s", join_address,
                                response.status, doc.get("message"))
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("join through %s failed: %s", join_address, exc)
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 2.0)


async def serve(options: NodeOptions, http_server: str = "front") -> int:
    node = KvNode(options)
    await node.start()
    app = make_app(node)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = split_address(options.http_address)
    front = None
    if http_server == "aiohttp":
        await web.TCPSite(runner, host, port).start()
    else:
        # The front serves the public address; the application listens privately.
        private = socket.socket()
        private.bind(("127.0.0.1", 0))
        await web.SockSite(runner, private).start()
        front = make_front(node, app[LIMITS_KEY], private.getsockname()[:2], app[LATENCY_KEY])
        await front.start(host, port)
    log.info("node %s serving HTTP on %s, peers on %s", options.node_id,
             options.http_address, options.raft_address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    join_task = None
    if node.needs_join and options.join is not None:
        join_task = asyncio.create_task(join_cluster(node, options.join))
    assert node.fatal is not None
    stopper = asyncio.create_task(stop.wait())
    waiting: list[asyncio.Future[Any]] = [node.fatal, stopper]
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    code = 1 if node.fatal.done() else 0
    stopper.cancel()
    if join_task is not None:
        join_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await join_task
    if front is not None:
        await front.close()
    await runner.cleanup()
    await node.stop()
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args)
    try:
        options = options_from(args)
    except ConfigError as exc:
        print(f"kvserver: {exc}", file=sys.stderr)
        return 2
    try:
        if args.event_loop == "uvloop" and not HAVE_UVLOOP:
            print("kvserver: --event-loop uvloop, but uvloop is not installed", file=sys.stderr)
            return 2
        if HAVE_UVLOOP and args.event_loop != "asyncio":
            return int(uvloop.run(serve(options, args.http_server)))
        return asyncio.run(serve(options, args.http_server))
    except KvServerError as exc:
        log.critical("%s", exc)
        print(f"kvserver: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
