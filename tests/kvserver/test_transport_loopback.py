"""Integration: two Transports on 127.0.0.1 (real loopback ports), and an injector.

These tests open real sockets on loopback only (ports chosen by the kernel) and wait on
asyncio events with timeouts, never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import pytest

from kvserver import codec
from kvserver.transport import (
    NONCE_BYTES,
    Transport,
    TransportConfig,
    encode_frame,
)
from raftcore.types import HeartbeatRequest, HeartbeatResponse, Message

SECRET = b"s3cret"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.changed = asyncio.Event()

    def __call__(self, msg: Message) -> None:
        self.messages.append(msg)
        self.changed.set()

    async def wait_for(self, count: int, timeout_s: float = 5.0) -> list[Message]:
        async def until() -> None:
            while len(self.messages) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(until(), timeout_s)
        return self.messages


async def pair() -> tuple[Transport, Inbox, Transport, Inbox]:
    inbox1, inbox2 = Inbox(), Inbox()
    t1 = Transport(TransportConfig("n1", SECRET), inbox1)
    t2 = Transport(TransportConfig("n2", SECRET), inbox2)
    addr1 = await t1.listen("127.0.0.1", 0)
    addr2 = await t2.listen("127.0.0.1", 0)
    t1.set_peer("n2", *addr2)
    t2.set_peer("n1", *addr1)
    return t1, inbox1, t2, inbox2


def test_two_transports_exchange_messages_in_order() -> None:
    async def scenario() -> None:
        t1, inbox1, t2, inbox2 = await pair()
        try:
            sent = [HeartbeatRequest(1, "n1", "n2", commit_index=i, seq=i) for i in range(50)]
            for msg in sent:
                t1.send(msg)
            assert await inbox2.wait_for(50) == sent
            t2.send(HeartbeatResponse(1, "n2", "n1", seq=7))
            assert await inbox1.wait_for(1) == [HeartbeatResponse(1, "n2", "n1", seq=7)]
            assert t1.counters.sent == 50
            assert t2.counters.received == 50
        finally:
            await t1.close()
            await t2.close()

    asyncio.run(scenario())


def test_an_injector_without_the_secret_is_cut_off_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        t1, _, t2, inbox2 = await pair()
        host, port = t2._server.sockets[0].getsockname()[:2]  # type: ignore[union-attr]
        try:
            reader, writer = await asyncio.open_connection(host, port)
            nonce = await reader.readexactly(NONCE_BYTES)
            forged = codec.encode_message(HeartbeatRequest(99, "n1", "n2", commit_index=1))
            writer.write(encode_frame(b"wrong secret", nonce, 0, forged))
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5.0) == b""  # closed by n2
            writer.close()
            # Garbage that is not even a frame (its length field is out of range; random
            # bytes would be a plausible length one time in sixteen and wait for more):
            # also closed, also counted.
            reader, writer = await asyncio.open_connection(host, port)
            await reader.readexactly(NONCE_BYTES)
            writer.write(b"\xff\xff\xff\xff" + os.urandom(60))
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5.0) == b""
            writer.close()
            # The real peer still gets through afterwards.
            t1.send(HeartbeatRequest(1, "n1", "n2", commit_index=3))
            assert [m.term for m in await inbox2.wait_for(1)] == [1]
            assert t2.counters.bad_frames == 2
        finally:
            await t1.close()
            await t2.close()

    with caplog.at_level(logging.WARNING, logger="kvserver.transport"):
        asyncio.run(scenario())
    assert "bad MAC" in caplog.text


def test_queue_to_an_unreachable_peer_stays_bounded_and_counts_drops() -> None:
    async def scenario() -> None:
        transport = Transport(
            TransportConfig("n1", SECRET, max_queue_messages=10), lambda msg: None
        )
        transport.set_peer("n2", "127.0.0.1", 1)  # nothing listens on port 1
        transport.send(HeartbeatRequest(1, "n1", "n9", commit_index=0))
        for i in range(100):
            transport.send(HeartbeatRequest(1, "n1", "n2", commit_index=i))
        peer = transport._peers["n2"]
        assert len(peer.queue) == 10
        # The oldest are dropped: what is left is the newest ten.
        assert codec.decode_message(peer.queue[0]) == HeartbeatRequest(1, "n1", "n2", 90)
        assert transport.counters.dropped_queue_full == 90
        assert transport.counters.dropped_unknown_peer == 1
        await transport.close()

    asyncio.run(scenario())


def test_reconnects_after_the_peer_restarts() -> None:
    async def scenario() -> None:
        inbox = Inbox()
        t1 = Transport(TransportConfig("n1", SECRET), lambda msg: None)
        t2 = Transport(TransportConfig("n2", SECRET), inbox)
        host, port = await t2.listen("127.0.0.1", 0)
        t1.set_peer("n2", host, port)
        t1.send(HeartbeatRequest(1, "n1", "n2", commit_index=1))
        await inbox.wait_for(1)
        await t2.close()
        t2 = Transport(TransportConfig("n2", SECRET), inbox)
        await t2.listen(host, port)
        try:
            async def keep_sending() -> None:
                while len(inbox.messages) < 2:
                    t1.send(HeartbeatRequest(2, "n1", "n2", commit_index=2))
                    inbox.changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(inbox.changed.wait(), 0.05)

            await asyncio.wait_for(keep_sending(), 10.0)
            assert inbox.messages[-1].term == 2
        finally:
            await t1.close()
            await t2.close()

    asyncio.run(scenario())
