"""The HTTP API (kvserver.http) against a fake node that runs the real KV state machine.

Every scenario runs twice: against the aiohttp application alone (aiohttp's test server)
and through the HTTP front (kvserver/httpfront.py), which serves the hot /kv routes itself
and relays the rest to the application; both on ephemeral 127.0.0.1 ports. The answers
must be the same.
"""

from __future__ import annotations

import asyncio
import copy
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from kvserver.errors import NoLeader, OutcomeUnknown
from kvserver.http import LATENCY_KEY, make_app
from kvserver.httpfront import FrontServer, make_front
from kvserver.httprules import Limits
from kvserver.service import ClusterStatus, Consistency, Member, ReadResult, Staleness, WriteResult
from raftcore import commands
from raftcore.errors import ConfChangePending, InvalidConfChange, NotLeader
from raftcore.kv import KVStateMachine
from raftcore.types import Entry


@dataclass
class FakeService:
    """Applies commands straight to a KVStateMachine; leadership is a switch."""

    node_id: str = "n1"
    raft_address: str = "127.0.0.1:1"
    http_address: str = "127.0.0.1:2"
    leader: bool = True
    leader_id: str | None = "n1"
    leader_http: str | None = None
    fail_with: Exception | None = None
    sm: KVStateMachine = field(default_factory=lambda: KVStateMachine(100))
    joined: list[tuple[str, str, str | None]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    reads: list[Consistency] = field(default_factory=list)

    def status(self) -> ClusterStatus:
        return ClusterStatus(
            self.node_id, "Leader" if self.leader else "Follower", self.leader_id,
            self.leader_http, 3, self.sm.applied_index, self.sm.applied_index,
            (Member("n1", "voter", self.raft_address, self.http_address, 5),),
        )

    def _check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        if not self.leader:
            raise NotLeader(self.leader_id)

    def _apply(self, command: commands.Command) -> WriteResult:
        index = self.sm.applied_index + 1
        result = self.sm.apply(Entry(1, index, data=commands.encode(command)))
        assert result.response is not None
        return WriteResult(result.response, index)

    async def write(self, command: commands.SessionCommand) -> WriteResult:
        self._check()
        return self._apply(command)

    def start_write(self, command: commands.SessionCommand) -> asyncio.Future[WriteResult]:
        self._check()
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        future.set_result(self._apply(command))
        return future

    def start_read(self, key: str, consistency: Consistency) -> asyncio.Future[ReadResult]:
        self.reads.append(consistency)
        if consistency is not Consistency.STALE:
            self._check()
        future: asyncio.Future[ReadResult] = asyncio.get_running_loop().create_future()
        future.set_result(self._read_now(key, consistency))
        return future

    def _read_now(self, key: str, consistency: Consistency) -> ReadResult:
        if consistency is Consistency.STALE:
            stale = Staleness(self.sm.applied_index, self.sm.applied_index, self.leader_id, 12.5)
            return ReadResult(self.sm.read(key), self.sm.applied_index, stale)
        return ReadResult(self.sm.read(key), self.sm.applied_index)

    async def register_session(self) -> int:
        self._check()
        return self._apply(commands.RegisterSession()).index

    async def read(self, key: str, consistency: Consistency) -> ReadResult:
        self.reads.append(consistency)
        if consistency is Consistency.STALE:
            stale = Staleness(self.sm.applied_index, self.sm.applied_index, self.leader_id, 12.5)
            return ReadResult(self.sm.read(key), self.sm.applied_index, stale)
        self._check()
        return ReadResult(self.sm.read(key), self.sm.applied_index)

    async def join(
        self, node_id: str, raft_address: str, http_address: str | None
    ) -> dict[str, tuple[str, str | None]]:
        self._check()
        if node_id == "n1":
            raise InvalidConfChange("n1 is already a member")
        self.joined.append((node_id, raft_address, http_address))
        return {"n1": (self.raft_address, self.http_address)}

    async def remove(self, node_id: str) -> None:
        self._check()
        if node_id == "busy":
            raise ConfChangePending(7)
        self.removed.append(node_id)

    async def transfer_leadership(self, target: str | None) -> str:
        self._check()
        return target or "n2"

    def metrics_text(self) -> str:
        return "# TYPE raftkv_term gauge\nraftkv_term 3\n"


class FrontClient:
    """aiohttp's TestClient interface, through the HTTP front on an ephemeral port."""

    def __init__(self, service: FakeService, limits: Limits) -> None:
        self._service = service
        self._limits = limits
        self._runner: web.AppRunner | None = None
        self._front: FrontServer | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    async def __aenter__(self) -> FrontClient:
        app = make_app(self._service, self._limits)  # type: ignore[arg-type]
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        private = socket.socket()
        private.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, private).start()
        self._front = make_front(self._service, self._limits,  # type: ignore[arg-type]
                                 private.getsockname()[:2], app[LATENCY_KEY])
        self.port = (await self._front.start("127.0.0.1", 0))[1]
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._session is not None
        assert self._front is not None
        assert self._runner is not None
        await self._session.close()
        await self._front.close()
        await self._runner.cleanup()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        assert self._session is not None
        return self._session.request(method, f"http://127.0.0.1:{self.port}{path}",
                                     **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


try:
    import uvloop  # type: ignore[import-not-found, unused-ignore]  # optional, as in kvserver
except ImportError:
    LOOP_FACTORY: Callable[[], asyncio.AbstractEventLoop] | None = None
else:
    LOOP_FACTORY = uvloop.new_event_loop

Client = Any
"""A TestClient or a FrontClient: the same request methods."""
Scenario = Callable[[Client, FakeService], Awaitable[None]]
LIMITS = Limits(max_key_bytes=16, max_value_bytes=32, max_body_bytes=1024)


def with_api(scenario: Scenario, service: FakeService | None = None) -> None:
    """Run `scenario` against the aiohttp application, then through the HTTP front."""

    async def main(front: bool) -> None:
        fake = copy.deepcopy(service) if service is not None else FakeService()
        if front:
            async with FrontClient(fake, LIMITS) as client:
                await scenario(client, fake)
        else:
            async with TestClient(TestServer(make_app(fake, LIMITS))) as test_client:
                await scenario(test_client, fake)

    asyncio.run(main(front=False))
    # The front runs under uvloop when it is installed, as `python -m kvserver` does.
    with asyncio.Runner(loop_factory=LOOP_FACTORY) as runner:
        runner.run(main(front=True))


async def error(response: ClientResponse, status: int, code: str, definite: bool) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body = await response.json()
    assert body["code"] == code
    assert body["definite"] is definite
    assert isinstance(body["message"], str)
    assert body["message"]
    return body  # type: ignore[no-any-return]


def test_put_get_delete_round_trip() -> None:
    async def scenario(client: Client, service: FakeService) -> None:
        response = await client.put("/kv/greeting", data="héllo")
        assert response.status == 200
        assert await response.json() == {"key": "greeting", "value": "héllo", "index": 1}
        response = await client.get("/kv/greeting")
        assert await response.json() == {"key": "greeting", "value": "héllo", "index": 1}
        response = await client.delete("/kv/greeting")
        assert await response.json() == {"key": "greeting", "previous": "héllo", "index": 2}
        await error(await client.get("/kv/greeting"), 404, "not_found", True)
        assert service.reads == [Consistency.LINEARIZABLE, Consistency.LINEARIZABLE]

    with_api(scenario)


def test_keys_may_contain_slashes_and_escapes() -> None:
    async def scenario(client: Client, service: FakeService) -> None:
        await client.put("/kv/a/b%20c", data="1")
        assert service.sm.read("a/b c") == "1"

    with_api(scenario)


def test_compare_and_set_by_query_and_by_json() -> None:
    async def scenario(client: Client, service: FakeService) -> None:
        await client.put("/kv/k", data="v1")
        response = await client.put("/kv/k?prev=v1", data="v2")
        assert (await response.json())["value"] == "v2"
        body = await error(await client.put("/kv/k?prev=v1", data="v3"), 409, "cas_mismatch",
                           True)
        assert body["current"] == "v2"
        response = await client.put("/kv/k", json={"from": "v2", "to": "v4"})
        assert response.status == 200
        await error(await client.put("/kv/new", json={"from": "x", "to": "y"}), 409,
                    "cas_mismatch", True)
        response = await client.put("/kv/new", json={"from": None, "to": "first"})
        assert response.status == 200
        assert service.sm.read("new") == "first"
        # A JSON value that is not a CAS object is stored as it is.
        await client.put("/kv/doc", json={"a": 1})
        assert service.sm.read("doc") == '{"a": 1}'
        await error(await client.put("/kv/k", json={"from": 1, "to": "x"}), 400, "bad_cas", True)

    with_api(scenario)


def test_read_consistency_modes_and_stale_reads_say_how_far_behind() -> None:
    async def scenario(client: Client, service: FakeService) -> None:
        await client.put("/kv/k", data="v")
        await client.get("/kv/k?consistency=lease")
        response = await client.get("/kv/k?consistency=stale")
        body = await response.json()
        assert body["staleness"]["applied_index"] == 1
        assert body["staleness"]["last_leader_contact_ms"] == 12.5
        assert service.reads == [Consistency.LEASE, Consistency.STALE]
        await error(await client.get("/kv/k?consistency=eventual"), 400, "bad_consistency", True)

    with_api(scenario)


def test_sessions_make_retries_exactly_once_and_expiry_is_definite() -> None:
    async def scenario(client: Client, service: FakeService) -> None:
        response = await client.post("/sessions")
        assert response.status == 201
        client_id = (await response.json())["client_id"]
        headers = {"Client-Id": str(client_id), "Request-Seq": "1", "Ack-Seq": "1"}
        first = await client.put("/kv/k", data="a", headers=headers)
        assert first.status == 200
        await client.put("/kv/k", data="b")
        retry = await client.put("/kv/k", data="a", headers=headers)
        assert retry.status == 200
        assert service.sm.read("k") == "b"  # the retry was not executed again
        stale = {"Client-Id": str(client_id), "Request-Seq": "1", "Ack-Seq": "1"}
        await client.put("/kv/k", data="c", headers={**stale, "Request-Seq": "2",
                                                        "Ack-Seq": "2"})
        await error(await client.put("/kv/k", data="a", headers=stale), 409, "stale_request",
                    False)
        unknown = {"Client-Id": "999", "Request-Seq": "1"}
        await error(await client.put("/kv/k", data="x", headers=unknown), 410,
                    "session_expired", True)

    with_api(scenario)


def test_append_adds_to_the_value_and_answers_the_value_after_it() -> None:
    async def scenario(client: Client, service: FakeService) -> None:
        response = await client.post("/kv/list?op=append", data="1 ")
        assert response.status == 200
        assert await response.json() == {"key": "list", "value": "1 ", "index": 1}
        response = await client.post("/kv/list?op=append", data="2 ")
        assert await response.json() == {"key": "list", "value": "1 2 ", "index": 2}
        response = await client.get("/kv/list")
        assert (await response.json())["value"] == "1 2 "
        response = await client.post("/kv/a/b%20c?op=append", data="é")
        assert (await response.json())["key"] == "a/b c"
        assert service.sm.read("a/b c") == "é"
        response = await client.post("/kv/list?op=append&redirect=1", data="")
        assert (await response.json())["value"] == "1 2 "

    with_api(scenario)


def test_append_retries_are_exactly_once_and_expiry_is_definite() -> None:
    async def scenario(client: Client, service: FakeService) -> None:
        client_id = (await (await client.post("/sessions")).json())["client_id"]
        headers = {"Client-Id": str(client_id), "Request-Seq": "1", "Ack-Seq": "1"}
        first = await client.post("/kv/l?op=append", data="1 ", headers=headers)
        assert first.status == 200
        assert (await first.json())["value"] == "1 "
        await client.post("/kv/l?op=append", data="2 ")
        retry = await client.post("/kv/l?op=append", data="1 ", headers=headers)
        assert retry.status == 200
        assert (await retry.json())["value"] == "1 "  # the original answer
        assert service.sm.read("l") == "1 2 "  # appended once, not twice
        following = {"Client-Id": str(client_id), "Request-Seq": "2", "Ack-Seq": "2"}
        response = await client.post("/kv/l?op=append", data="3 ", headers=following)
        assert (await response.json())["value"] == "1 2 3 "
        await error(await client.post("/kv/l?op=append", data="1 ", headers=headers), 409,
                    "stale_request", False)
        applied = service.sm.applied_index
        unknown = {"Client-Id": "999", "Request-Seq": "1"}
        await error(await client.post("/kv/l?op=append", data="4 ", headers=unknown), 410,
                    "session_expired", True)
        await error(await client.post("/kv/l?op=append", data="4 ",
                                      headers={"Client-Id": "x", "Request-Seq": "1"}),
                    400, "bad_session", True)
        assert service.sm.read("l") == "1 2 3 "
        assert service.sm.applied_index == applied + 1  # only the expired entry was applied

    with_api(scenario)


@pytest.mark.parametrize(
    "headers",
    [
        {"Client-Id": "1"},
        {"Request-Seq": "1"},
        {"Client-Id": "x", "Request-Seq": "1"},
        {"Client-Id": "0", "Request-Seq": "1"},
        {"Client-Id": "1", "Request-Seq": "1", "Ack-Seq": "2"},
        {"Client-Id": "1", "Request-Seq": "-1"},
    ],
)
def test_malformed_session_headers_are_rejected(headers: dict[str, str]) -> None:
    async def scenario(client: Client, service: FakeService) -> None:
        await error(await client.put("/kv/k", data="v", headers=headers), 400, "bad_session",
                    True)
        assert service.sm.applied_index == 0

    with_api(scenario)


def test_size_limits_answer_413_and_bad_bytes_400() -> None:
    async def scenario(client: Client, service: FakeService) -> None:
        await error(await client.put("/kv/" + "k" * 17, data="v"), 413, "key_too_large", True)
        await error(await client.put("/kv/k", data="v" * 33), 413, "value_too_large", True)
        await error(await client.put("/kv/k", data=b"v" * 2000), 413, "body_too_large", True)
        await error(await client.put("/kv/k", data=b"\xff\xfe"), 400, "bad_value", True)
        await error(await client.get("/nowhere"), 404, "no_route", True)
        await error(await client.request("PATCH", "/kv/k", data="v"), 405,
                    "method_not_allowed", True)
        await error(await client.post("/kv/k", data="v"), 400, "bad_op", True)
        await error(await client.post("/kv/k?op=prepend", data="v"), 400, "bad_op", True)
        await error(await client.post("/kv/k?op=append", data="v" * 33), 413,
                    "value_too_large", True)
        await error(await client.post("/kv/k?op=append", data=b"\xff"), 400, "bad_value", True)
        assert service.sm.applied_index == 0

    with_api(scenario)


def test_no_leader_is_503_with_retry_after_and_redirect_is_307() -> None:
    async def scenario(client: Client, service: FakeService) -> None:
        service.leader, service.leader_id = False, None
        response = await client.put("/kv/k", data="v")
        await error(response, 503, "no_leader", True)
        assert response.headers["Retry-After"] == "1"
        service.leader_id, service.leader_http = "n2", "127.0.0.1:9"
        response = await client.put("/kv/k?redirect=1", data="v", allow_redirects=False)
        body = await error(response, 307, "redirect", True)
        assert body["leader"] == "n2"
        assert response.headers["Location"] == "http://127.0.0.1:9/kv/k?redirect=1"
        # A request that was already forwarded once is not forwarded again.
        response = await client.put("/kv/k", data="v",
                                    headers={"X-Raftkv-Forwarded-By": "n3"})
        await error(response, 503, "no_leader", True)

    with_api(scenario)


def test_followers_forward_to_the_leader_and_relay_its_answer() -> None:
    async def scenario(client: Client, leader: FakeService) -> None:
        follower = FakeService(node_id="n2", leader=False, leader_id="n1",
                               leader_http=f"127.0.0.1:{client.port}")
        async with TestClient(TestServer(make_app(follower, LIMITS))) as via:
            response = await via.put("/kv/k", data="v", headers={"Client-Id": "5",
                                                                   "Request-Seq": "1"})
            # Session 5 does not exist on the leader: its definite error comes back intact.
            await error(response, 410, "session_expired", True)
            assert (await via.put("/kv/k?prev=", data="v")).status == 409
            assert (await via.put("/kv/k", data="v")).status == 200
            appended = await via.post("/kv/l?op=append", data="x")
            assert (await appended.json())["value"] == "x"
            assert leader.sm.read("l") == "x"
            assert (await (await via.get("/kv/k")).json())["value"] == "v"
            assert leader.sm.read("k") == "v"
            assert follower.sm.applied_index == 0

    with_api(scenario)


def test_forwarding_to_an_unreachable_leader_is_a_definite_503() -> None:
    async def scenario(client: Client, service: FakeService) -> None:
        service.leader, service.leader_id, service.leader_http = False, "n2", "127.0.0.1:1"
        response = await client.put("/kv/k", data="v")
        await error(response, 503, "leader_unreachable", True)

    with_api(scenario)


def test_request_failures_carry_their_definiteness() -> None:
    async def scenario(client: Client, service: FakeService) -> None:
        service.fail_with = OutcomeUnknown("leadership lost while waiting")
        await error(await client.put("/kv/k", data="v"), 504, "outcome_unknown", False)
        service.fail_with = NoLeader()
        response = await client.delete("/kv/k")
        await error(response, 503, "no_leader", True)
        assert response.headers["Retry-After"] == "1"

    with_api(scenario)


def test_cluster_routes() -> None:
    async def scenario(client: Client, service: FakeService) -> None:
        doc = await (await client.get("/cluster")).json()
        assert doc["leader_id"] == "n1"
        assert doc["members"][0]["match_index"] == 5
        response = await client.post("/cluster/join",
                                     json={"id": "n4", "raft": "h:1", "http": "h:2"})
        doc = await response.json()
        assert doc["role"] == "learner"
        assert doc["peers"] == {"n1": {"raft": "127.0.0.1:1", "http": "127.0.0.1:2"}}
        assert service.joined == [("n4", "h:1", "h:2")]
        await error(await client.post("/cluster/join", json={"id": "n1", "raft": "h:1"}), 400,
                    "invalid_request", True)
        await error(await client.post("/cluster/join", json={"id": "n5"}), 400, "bad_field",
                    True)
        await error(await client.post("/cluster/join", data="[1"), 400, "bad_json", True)
        assert (await client.post("/cluster/remove", json={"id": "n4"})).status == 200
        assert service.removed == ["n4"]
        response = await client.post("/cluster/remove", json={"id": "busy"})
        await error(response, 503, "busy", True)
        response = await client.post("/cluster/transfer-leadership", json={"id": "n3"})
        assert (await response.json())["leader"] == "n3"
        response = await client.post("/cluster/transfer-leadership")
        assert (await response.json())["leader"] == "n2"

    with_api(scenario)


def test_metrics_and_health() -> None:
    async def scenario(client: Client, service: FakeService) -> None:
        await client.put("/kv/k", data="v")
        text = await (await client.get("/metrics")).text()
        assert "raftkv_term 3" in text
        assert 'raftkv_http_request_duration_seconds_count{route="kv_put",method="PUT"} 1' in text
        health = await (await client.get("/health")).json()
        assert health["status"] == "ok"
        assert health["raft"] == service.raft_address

    with_api(scenario)


def test_raftd_session() -> None:
    """raftd's README: curl -XPOST localhost:4001/db/foo -d 'bar'; curl localhost:4001/db/foo"""

    async def scenario(client: Client, service: FakeService) -> None:
        assert (await client.post("/db/foo", data="bar")).status == 200
        response = await client.get("/db/foo")
        assert await response.text() == "bar"

    with_api(scenario)


def test_hraftd_session() -> None:
    """hraftd's README: POST /key {"user1": "batman"}, GET /key/user1, DELETE /key/user1."""

    async def scenario(client: Client, service: FakeService) -> None:
        response = await client.post("/key", data='{"user1": "batman", "user2": "robin"}')
        assert response.status == 200
        assert await (await client.get("/key/user1")).json() == {"user1": "batman"}
        assert (await client.delete("/key/user1")).status == 200
        assert await (await client.get("/key/user1")).json() == {"user1": ""}
        assert service.sm.read("user2") == "robin"
        response = await client.post("/join", json={"id": "node1", "addr": "127.0.0.1:12001"})
        assert response.status == 200
        assert service.joined == [("node1", "127.0.0.1:12001", None)]
        await error(await client.post("/key", data='{"k": 1}'), 400, "bad_value", True)

    with_api(scenario)


def test_goraft_session() -> None:
    """eatonphil/goraft's README: GET /set?key=y&value=hello, then GET /get?key=y."""

    async def scenario(client: Client, service: FakeService) -> None:
        assert (await client.get("/set?key=y&value=hello")).status == 200
        assert await (await client.get("/get?key=y")).text() == "hello"
        await error(await client.get("/get?key=nope"), 404, "not_found", True)
        await error(await client.get("/set?value=x"), 400, "bad_key", True)

    with_api(scenario)


def test_raftd_join_asks_the_joining_node_for_its_raft_address() -> None:
    async def scenario(client: Client, service: FakeService) -> None:
        joiner = FakeService(node_id="n9", raft_address="127.0.0.1:7777")
        async with TestClient(TestServer(make_app(joiner, LIMITS))) as other:
            connection = f"http://127.0.0.1:{other.port}"
            response = await client.post("/join", json={"name": "n9",
                                                         "connectionString": connection})
            assert response.status == 200
            assert service.joined == [("n9", "127.0.0.1:7777", f"127.0.0.1:{other.port}")]

    with_api(scenario)


def test_every_route_is_in_the_openapi_file_and_the_guide() -> None:
    root = Path(__file__).resolve().parents[2] / "docs"
    spec = (root / "openapi.yaml").read_text()
    documented = {m.group(1) for m in re.finditer(r"^  (/\S*):$", spec, re.MULTILINE)}
    app = make_app(FakeService())
    served = {
        re.sub(r"\{(\w+):[^}]+\}", r"{\1}", resource.canonical)
        for resource in app.router.resources()
    }
    assert served == documented
    guide = (root / "http-api.md").read_text()
    missing = [path for path in served if path.split("{")[0].rstrip("/") not in guide]
    assert not missing
