"""Peer transport: authenticated, length-prefixed frames over persistent TCP connections.

Role: carry the core's messages between nodes. Raft tolerates lost, duplicated and delayed
messages, so the transport drops rather than blocks: a full send queue loses its oldest
message, a broken connection loses what was in flight, and both are counted.

Rules:
- Each node dials every peer it sends to and keeps that connection for its own outgoing
  messages; connections it accepts only receive. A lost connection is redialled with
  exponential backoff and jitter.
- Nothing a peer sends can crash the node: a frame that is too long, fails its MAC, or does
  not decode is logged, and that one connection is closed.
- While a peer is connected, `send` encodes and writes at once into the connection's
  buffer (no task switch per message); while it is not, messages wait in a queue that is
  flushed on connect. Both are bounded in bytes (the queue also in messages), and what
  does not fit is dropped and counted.

Wire format (one connection, dialer -> acceptor):

    acceptor -> dialer   16 random bytes: the connection's nonce
    dialer -> acceptor   frames, each:  u32 length (big-endian) | mac (32 bytes) | body
                         body = codec.encode_message(msg)
                         mac  = HMAC-SHA256(cluster secret,
                                            b"raftkv-frame-v1" | nonce | u64 frame number | body)

Frame numbers count from 0 on each connection, so a frame recorded on one connection cannot
be replayed on another, nor reordered or replayed on the same one. `length` counts the mac
and body and is at most `max_frame_bytes`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import logging
import os
import random
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, cast

from kvserver import codec
from raftcore.types import Message, NodeId

log = logging.getLogger(__name__)

NONCE_BYTES: Final = 16
MAC_BYTES: Final = 32
LENGTH: Final = struct.Struct(">I")
MAC_DOMAIN: Final = b"raftkv-frame-v1"
DEFAULT_MAX_FRAME_BYTES: Final = 256 * 1024 * 1024


class FrameError(Exception):
    """A frame that must not be used; the connection it came on is closed."""


def frame_mac(secret: bytes, nonce: bytes, frame_number: int, body: bytes) -> bytes:
    msg = b"".join((MAC_DOMAIN, nonce, frame_number.to_bytes(8, "big"), body))
    return hmac.digest(secret, msg, hashlib.sha256)


def encode_frame(secret: bytes, nonce: bytes, frame_number: int, body: bytes) -> bytes:
    mac = frame_mac(secret, nonce, frame_number, body)
    return LENGTH.pack(MAC_BYTES + len(body)) + mac + body


class FrameDecoder:
    """Sans-I/O reader of one connection's frames (after the nonce).

    `feed` returns every complete, authenticated message; the first bad frame raises
    FrameError and the decoder refuses all further input.
    """

    def __init__(
        self, secret: bytes, nonce: bytes, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    ) -> None:
        assert len(nonce) == NONCE_BYTES
        self._secret = secret
        self._nonce = nonce
        self._max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._frame_number = 0
        self._broken: str | None = None

    def feed(self, data: bytes) -> list[Message]:
        if self._broken is not None:
            raise FrameError(f"connection already failed: {self._broken}")
        buffer = self._buffer
        buffer += data
        out: list[Message] = []
        offset = 0
        try:
            while True:
                msg, offset = self._next(buffer, offset)
                if msg is None:
                    break
                out.append(msg)
        except FrameError as exc:
            self._broken = str(exc)
            buffer.clear()
            raise
        del buffer[:offset]
        return out

    def _next(self, buffer: bytearray, offset: int) -> tuple[Message | None, int]:
        """The message of the frame at `offset` (None if incomplete), and where it ends."""
        if len(buffer) - offset < LENGTH.size:
            return None, offset
        (length,) = LENGTH.unpack_from(buffer, offset)
        if not MAC_BYTES <= length <= self._max_frame_bytes:
            raise FrameError(f"frame length {length} out of range")
        start = offset + LENGTH.size
        end = start + length
        if len(buffer) < end:
            return None, offset
        mac = bytes(buffer[start : start + MAC_BYTES])
        body = bytes(buffer[start + MAC_BYTES : end])
        expected = frame_mac(self._secret, self._nonce, self._frame_number, body)
        if not hmac.compare_digest(mac, expected):
            raise FrameError(f"bad MAC on frame {self._frame_number}")
        self._frame_number += 1
        try:
            return codec.decode_message(body), end
        except codec.CodecError as exc:
            raise FrameError(f"authenticated frame does not decode: {exc}") from None


@dataclass(slots=True)
class TransportCounters:
    sent: int = 0
    received: int = 0
    dropped_queue_full: int = 0
    dropped_unknown_peer: int = 0
    dropped_disconnected: int = 0
    dropped_misaddressed: int = 0
    bad_frames: int = 0
    connects: int = 0


@dataclass(frozen=True, slots=True)
class TransportConfig:
    node_id: NodeId
    secret: bytes
    max_queue_messages: int = 4096
    max_queue_bytes: int = 64 * 1024 * 1024
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    backoff_initial_s: float = 0.02
    backoff_max_s: float = 1.0
    connect_timeout_s: float = 2.0


class _Peer:
    """One outgoing connection: its queue, its dialler task."""

    def __init__(self, transport: Transport, peer_id: NodeId, host: str, port: int) -> None:
        self.peer_id = peer_id
        self.address = (host, port)
        self.queue: collections.deque[bytes] = collections.deque()
        self.queue_bytes = 0
        self._writer: asyncio.StreamWriter | None = None
        self._nonce = b""
        self._frame_number = 0
        self._transport = transport
        self.task = asyncio.get_running_loop().create_task(
            self._run(), name=f"peer-{peer_id}"
        )

    def enqueue(self, body: bytes) -> None:
        """Send `body` now if connected, else queue it (dropping the oldest if full)."""
        writer = self._writer
        if writer is not None:
            self._write([body], writer)
            return
        config, counters = self._transport.config, self._transport.counters
        self.queue.append(body)
        self.queue_bytes += len(body)
        while len(self.queue) > 1 and (
            len(self.queue) > config.max_queue_messages
            or self.queue_bytes > config.max_queue_bytes
        ):
            self.queue_bytes -= len(self.queue.popleft())
            counters.dropped_queue_full += 1

    def enqueue_many(self, bodies: list[bytes]) -> None:
        writer = self._writer
        if writer is not None:
            self._write(bodies, writer)
        else:
            for body in bodies:
                self.enqueue(body)

    def _write(self, bodies: list[bytes], writer: asyncio.StreamWriter) -> None:
        config, counters = self._transport.config, self._transport.counters
        if writer.transport.is_closing():
            counters.dropped_disconnected += len(bodies)
            return
        if writer.transport.get_write_buffer_size() > config.max_queue_bytes:
            counters.dropped_queue_full += len(bodies)  # The peer does not keep up.
            return
        secret, nonce, number = config.secret, self._nonce, self._frame_number
        frames = []
        for body in bodies:
            frames.append(encode_frame(secret, nonce, number, body))
            number += 1
        self._frame_number = number
        writer.write(b"".join(frames))
        counters.sent += len(bodies)

    async def _run(self) -> None:
        config = self._transport.config
        backoff_s = config.backoff_initial_s
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(*self.address), config.connect_timeout_s
                )
            except (OSError, TimeoutError) as exc:
                log.debug("connect to %s at %s failed: %s", self.peer_id, self.address, exc)
            else:
                self._transport.counters.connects += 1
                try:
                    await self._stream(reader, writer)
                    backoff_s = config.backoff_initial_s
                except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                    log.info("connection to %s lost: %s", self.peer_id, exc)
                finally:
                    writer.close()
            delay_s = backoff_s * (0.5 + self._transport.rng.random())
            backoff_s = min(backoff_s * 2, config.backoff_max_s)
            await asyncio.sleep(delay_s)

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Take the nonce, flush the queue, then hand writes to `enqueue` until EOF."""
        config = self._transport.config
        self._nonce = await asyncio.wait_for(reader.readexactly(NONCE_BYTES),
                                             config.connect_timeout_s)
        self._frame_number = 0
        batch, self.queue = list(self.queue), collections.deque()
        self.queue_bytes = 0
        if batch:
            self._write(batch, writer)
        self._writer = writer
        try:
            # The acceptor never sends after the nonce: reading returns only at EOF.
            while await reader.read(4096):
                pass
            raise ConnectionResetError("peer closed the connection")
        finally:
            self._writer = None


class Transport:
    """Sends the core's messages to peers and hands received ones to `on_message`."""

    def __init__(self, config: TransportConfig, on_message: Callable[[Message], None]) -> None:
        assert config.secret, "a cluster secret is required"
        self.config = config
        self.counters = TransportCounters()
        self.rng = random.Random(os.urandom(8))
        self._on_message = on_message
        self._peers: dict[NodeId, _Peer] = {}
        self._server: asyncio.Server | None = None
        self._inbound: set[asyncio.BaseTransport] = set()

    async def listen(self, host: str, port: int) -> tuple[str, int]:
        """Start accepting peer connections; returns the bound address."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Inbound(self), host, port)
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    def set_peer(self, peer_id: NodeId, host: str, port: int) -> None:
        """Add a peer, or move it to a new address."""
        assert peer_id != self.config.node_id, "a node does not send to itself"
        current = self._peers.get(peer_id)
        if current is not None and current.address == (host, port):
            return
        if current is not None:
            current.task.cancel()
        self._peers[peer_id] = _Peer(self, peer_id, host, port)

    def remove_peer(self, peer_id: NodeId) -> None:
        peer = self._peers.pop(peer_id, None)
        if peer is not None:
            peer.task.cancel()

    def peers(self) -> dict[NodeId, tuple[str, int]]:
        return {peer_id: peer.address for peer_id, peer in self._peers.items()}

    def send(self, msg: Message) -> None:
        """Send or queue `msg` for its recipient; never blocks."""
        peer = self._peers.get(msg.to_id)
        if peer is None:
            self.counters.dropped_unknown_peer += 1
            log.debug("no address for %s; message dropped", msg.to_id)
            return
        peer.enqueue(codec.encode_message(msg))

    def send_all(self, messages: Iterable[Message]) -> None:
        """`send` each message, with one write per peer."""
        bodies: dict[NodeId, list[bytes]] = {}
        for msg in messages:
            bodies.setdefault(msg.to_id, []).append(codec.encode_message(msg))
        for to, encoded in bodies.items():
            peer = self._peers.get(to)
            if peer is None:
                self.counters.dropped_unknown_peer += len(encoded)
                log.debug("no address for %s; message dropped", to)
            else:
                peer.enqueue_many(encoded)

    async def close(self) -> None:
        for peer in self._peers.values():
            peer.task.cancel()
        tasks = [peer.task for peer in self._peers.values()]
        self._peers.clear()
        for inbound in list(self._inbound):
            inbound.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _deliver(self, msg: Message) -> None:
        if msg.to_id != self.config.node_id:
            self.counters.dropped_misaddressed += 1
            log.warning("message for %s delivered to %s; dropped", msg.to_id, self.config.node_id)
            return
        self.counters.received += 1
        self._on_message(msg)


class _Inbound(asyncio.Protocol):
    """One accepted connection: send the nonce, then decode frames as bytes arrive and
    hand each message to the transport (no task and no stream buffer in between)."""

    def __init__(self, transport: Transport) -> None:
        self._owner = transport
        self._connection: asyncio.BaseTransport | None = None
        self._decoder: FrameDecoder | None = None
        self._peer: object = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        owner = self._owner
        self._connection = transport
        self._peer = transport.get_extra_info("peername")
        nonce = os.urandom(NONCE_BYTES)
        self._decoder = FrameDecoder(owner.config.secret, nonce, owner.config.max_frame_bytes)
        owner._inbound.add(transport)
        cast(asyncio.WriteTransport, transport).write(nonce)

    def data_received(self, data: bytes) -> None:
        assert self._decoder is not None
        try:
            messages = self._decoder.feed(data)
        except FrameError as exc:
            self._owner.counters.bad_frames += 1
            log.warning("closing peer connection from %s: %s", self._peer, exc)
            if self._connection is not None:
                self._connection.close()
            return
        for msg in messages:
            self._owner._deliver(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.info("peer connection from %s failed: %s", self._peer, exc)
        if self._connection is not None:
            self._owner._inbound.discard(self._connection)
