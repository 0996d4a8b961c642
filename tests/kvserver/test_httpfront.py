"""The HTTP front (kvserver/httpfront.py) and its parser (kvserver/httpparse.py).

Parser tests are pure. Front tests talk raw HTTP/1.1 over a socket to a front on an
ephemeral 127.0.0.1 port, backed by the fake service of test_http_api.py, to check what a
client library would hide: pipelining, 100-continue, connection handling, which requests
take the fast path and which are relayed.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_http_api import LIMITS, LOOP_FACTORY, FakeService, FrontClient

from kvserver.httpfront import _written_body
from kvserver.httpparse import ParseError, RequestParser

# ---------------------------------------------------------------- the parser


def parse_all(data: bytes, max_body_bytes: int = 1024) -> list[tuple[str, str, bytes]]:
    parser = RequestParser(4096, max_body_bytes)
    parser.feed(data)
    out = []
    while (request := parser.next_request()) is not None:
        out.append((request.method, request.target, request.body))
    return out


PIPELINE = (b"PUT /kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /kv/a HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /key HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4;ext=1\r\n{\"a\"\r\n5\r\n: \"b\"\r\n1\r\n}\r\n0\r\nX-Trailer: 1\r\n\r\n")


def test_pipelined_requests_with_lengths_and_chunks() -> None:
    assert parse_all(PIPELINE) == [("PUT", "/kv/a", b"abc"), ("GET", "/kv/a", b""),
                                   ("POST", "/key", b'{"a": "b"}')]


@given(st.lists(st.integers(min_value=1, max_value=len(PIPELINE) - 1), max_size=8))
def test_any_chunking_of_the_stream_gives_the_same_requests(cuts: list[int]) -> None:
    parser = RequestParser(4096, 1024)
    out = []
    previous = 0
    for cut in [*sorted(set(cuts)), len(PIPELINE)]:
        parser.feed(PIPELINE[previous:cut])
        previous = cut
        while (request := parser.next_request()) is not None:
            out.append((request.method, request.target, request.body))
    assert out == parse_all(PIPELINE)


@pytest.mark.parametrize(("raw", "status"), [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /kv/a HTTP/2.0\r\n\r\n", 505),
    (b"GET /kv/a HTTP/1.1\r\nbad header\r\n\r\n", 400),
    (b"PUT /kv/a HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"PUT /kv/a HTTP/1.1\r\nContent-Length: 2000\r\n\r\n", 413),
    (b"PUT /kv/a HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"PUT /kv/a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"PUT /kv/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"PUT /kv/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"400\r\n" + b"x" * 1024
     + b"\r\n400\r\n", 413),
    (b"GET /" + b"x" * 5000 + b" HTTP/1.1\r\n\r\n", 431),
])
def test_malformed_or_oversized_requests_raise_with_the_status_to_answer(
        raw: bytes, status: int) -> None:
    with pytest.raises(ParseError) as caught:
        parse_all(raw)
    assert caught.value.status == status


def test_expect_continue_is_reported_once_before_the_body() -> None:
    parser = RequestParser(4096, 1024)
    parser.feed(b"PUT /kv/a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert parser.next_request() is None
    assert parser.continue_pending()
    assert not parser.continue_pending()
    parser.feed(b"hi")
    request = parser.next_request()
    assert request is not None
    assert request.body == b"hi"


def test_keep_alive_follows_the_version_and_connection_header() -> None:
    parser = RequestParser(4096, 1024)
    parser.feed(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n"
                b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
    answers = []
    while (request := parser.next_request()) is not None:
        answers.append(request.keep_alive)
    assert answers == [True, False, False, True]


# ---------------------------------------------------------------- the front

Exchange = Callable[[bytes], Awaitable[bytes]]


def with_front(scenario: Callable[[FrontClient, FakeService], Awaitable[None]],
               service: FakeService | None = None) -> None:
    async def main() -> None:
        fake = service or FakeService()
        async with FrontClient(fake, LIMITS) as client:
            await scenario(client, fake)

    with asyncio.Runner(loop_factory=LOOP_FACTORY) as runner:
        runner.run(main())


async def raw_exchange(port: int, data: bytes, until_close: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    if until_close:
        answer = await asyncio.wait_for(reader.read(), 5)
    else:
        answer = await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    return answer


def responses(answer: bytes) -> list[tuple[int, bytes, bytes]]:
    """(status, head, body) of each response in a stream of Content-Length responses."""
    out = []
    while answer:
        head, _, rest = answer.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
        out.append((int(head.split(b" ")[1]), head, rest[:length]))
        answer = rest[length:]
    return out


def statuses(answer: bytes) -> list[int]:
    return [status for status, _, _ in responses(answer)]


def test_plain_kv_requests_take_the_fast_path_and_others_are_relayed() -> None:
    async def scenario(client: FrontClient, service: FakeService) -> None:
        assert client._front is not None
        front = client._front
        assert (await client.put("/kv/a", data="1")).status == 200
        assert (await client.get("/kv/a?consistency=stale")).status == 200
        assert (await client.delete("/kv/a")).status == 200
        assert front.relayed == 0
        relayed = [client.put("/kv/a?prev=1", data="2"), client.get("/kv/a%2Fb"),
                   client.get("/kv/a?redirect=1"), client.get("/cluster"),
                   client.put("/kv/a", json={"from": None, "to": "x"})]
        for request in relayed:
            await (await request).read()
        assert front.relayed == len(relayed)
        # Raw UTF-8 in the request line: aiohttp decides what it means, as without the front.
        await raw_exchange(client.port, "PUT /kv/é HTTP/1.1\r\nContent-Length: 1\r\n"
                           "Connection: close\r\n\r\nv".encode())
        assert front.relayed == len(relayed) + 1

    with_front(scenario)


def test_pipelined_requests_are_answered_in_order_then_closed() -> None:
    async def scenario(client: FrontClient, service: FakeService) -> None:
        answer = await raw_exchange(client.port, (
            b"PUT /kv/a HTTP/1.1\r\nContent-Length: 1\r\n\r\n1"
            b"GET /cluster HTTP/1.1\r\n\r\n"           # relayed, in the middle
            b"GET /kv/a HTTP/1.1\r\n\r\n"
            b"GET /kv/nope HTTP/1.1\r\nConnection: close\r\n\r\n"))
        assert statuses(answer) == [200, 200, 200, 404]
        bodies = [json.loads(body) for _, _, body in responses(answer)]
        assert bodies[0] == {"key": "a", "value": "1", "index": 1}
        assert bodies[2]["value"] == "1"
        assert bodies[3]["code"] == "not_found"
        assert b"Connection: close" in responses(answer)[3][1]

    with_front(scenario)


def test_expect_continue_gets_100_before_the_body_is_sent() -> None:
    async def scenario(client: FrontClient, service: FakeService) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
        writer.write(b"PUT /kv/c HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"
                     b"Connection: close\r\n\r\n")
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"ok")
        final = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert statuses(final) == [200]
        assert service.sm.read("c") == "ok"

    with_front(scenario)


@pytest.mark.parametrize(("raw", "status", "code"), [
    (b"NOT HTTP\r\n\r\n", 400, "bad_request"),
    (b"PUT /kv/a HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413, "body_too_large"),
])
def test_unparseable_requests_get_a_definite_json_error_and_the_connection_closes(
        raw: bytes, status: int, code: str) -> None:
    async def scenario(client: FrontClient, service: FakeService) -> None:
        answer = await raw_exchange(client.port, raw)  # read() returns: the front closed
        assert statuses(answer) == [status]
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert body["code"] == code
        assert body["definite"] is True
        assert service.sm.applied_index == 0

    with_front(scenario)


def test_http_1_0_without_keep_alive_is_answered_and_closed() -> None:
    async def scenario(client: FrontClient, service: FakeService) -> None:
        answer = await raw_exchange(client.port,
                                    b"PUT /kv/z HTTP/1.0\r\nContent-Length: 1\r\n\r\n9")
        assert statuses(answer) == [200]
        assert b"Connection: close" in answer

    with_front(scenario)


def test_a_follower_relays_fast_path_writes_so_they_are_forwarded() -> None:
    async def scenario(client: FrontClient, service: FakeService) -> None:
        assert client._front is not None
        response = await client.put("/kv/k", data="v")
        assert response.status == 503  # no leader address known: aiohttp's definite answer
        assert (await response.json())["code"] == "no_leader"
        assert client._front.relayed == 1
        assert service.sm.applied_index == 0

    with_front(scenario, FakeService(leader=False, leader_id=None))


@given(st.text(), st.text(), st.integers(min_value=0, max_value=2**63 - 1))
def test_the_fast_written_body_is_json_dumps_byte_for_byte(key: str, value: str,
                                                           index: int) -> None:
    expected = json.dumps({"key": key, "value": value, "index": index}).encode()
    assert _written_body(key, value, index) == expected
