"""A thin HTTP front on one PySyncObj node: the peer system of bench/kvserver.py.

Usage: python -m bench.kvserver_pysyncobj --http HOST:PORT --raft HOST:PORT
                                          --partners HOST:PORT,HOST:PORT

Role: serve the same routes the benchmark drives on this project's nodes, backed by a
PySyncObj replicated dict, configured for PySyncObj's best throughput
(`appendEntriesUseBatch=False`: each command is sent at once instead of waiting up to
`appendEntriesPeriod` to batch). PySyncObj keeps its journal in memory and never fsyncs,
so its figures are for a system with no durability on the write path.

Routes: `PUT /kv/{key}` (body = value) and `GET /kv/{key}`, both replicated calls through
the Raft log (PySyncObj has no ReadIndex, so a linearizable read goes through the log
too; a follower forwards the call to the leader), and `GET /status` with the node's view
of the leader. A failed call answers 503.

Threads: PySyncObj runs its own ticking thread; its callbacks hand results back to the
event loop with `call_soon_threadsafe`.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from aiohttp import web

try:
    import uvloop  # type: ignore[import-not-found, unused-ignore]  # optional speed-up
except ImportError:
    HAVE_UVLOOP = False
else:
    HAVE_UVLOOP = True
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated  # type: ignore[import-untyped]


class KVStore(SyncObj):  # type: ignore[misc]  # PySyncObj ships no type hints
    def __init__(self, self_address: str, partners: list[str], conf: SyncObjConf) -> None:
        super().__init__(self_address, partners, conf)
        self._data: dict[str, str] = {}

    @replicated  # type: ignore[untyped-decorator, misc, unused-ignore]
    def set(self, key: str, value: str) -> bool:
        self._data[key] = value
        return True

    @replicated  # type: ignore[untyped-decorator, misc, unused-ignore]
    def get(self, key: str) -> str | None:
        return self._data.get(key)


def make_app(store: KVStore) -> web.Application:
    loop = asyncio.get_running_loop()

    def call(method: Any, *args: str) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = loop.create_future()

        def done(result: Any, error: Any) -> None:
            loop.call_soon_threadsafe(_settle, future, result, error)

        method(*args, callback=done)
        return future

    async def put(request: web.Request) -> web.Response:
        value = (await request.read()).decode()
        ok, error = await call(store.set, request.match_info["key"], value)
        if error != FAIL_REASON.SUCCESS:
            return web.json_response({"error": str(error)}, status=503)
        return web.json_response({"ok": ok})

    async def get(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        value, error = await call(store.get, key)
        if error != FAIL_REASON.SUCCESS:
            return web.json_response({"error": str(error)}, status=503)
        if value is None:
            return web.json_response({"key": key}, status=404)
        return web.json_response({"key": key, "value": value})

    async def status(_: web.Request) -> web.Response:
        leader = store._getLeader()
        return web.json_response({"self": store.selfNode.address,
                                  "leader": None if leader is None else leader.address})

    app = web.Application()
    app.add_routes([web.put("/kv/{key}", put), web.get("/kv/{key}", get),
                    web.get("/status", status)])
    return app


def _settle(future: asyncio.Future[Any], result: Any, error: Any) -> None:
    if not future.done():
        future.set_result((result, error))


async def serve(args: argparse.Namespace) -> None:
    conf = SyncObjConf(appendEntriesUseBatch=False, dynamicMembershipChange=False)
    partners = [p for p in args.partners.split(",") if p]
    store = KVStore(args.raft, partners, conf)
    runner = web.AppRunner(make_app(store), access_log=None)
    await runner.setup()
    host, port = args.http.rsplit(":", 1)
    await web.TCPSite(runner, host, int(port)).start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--http", required=True)
    parser.add_argument("--raft", required=True)
    parser.add_argument("--partners", required=True)
    args = parser.parse_args()
    if HAVE_UVLOOP:  # as the kvserver nodes use it
        uvloop.run(serve(args))
    else:
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
