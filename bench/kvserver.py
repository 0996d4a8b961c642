"""Benchmark: write and linearizable-read throughput of a local 3-node kvserver cluster.

Usage: python -m bench.kvserver [--seconds 5] [--clients 1,16,64] [--fsync always]

Starts three `python -m kvserver` processes on 127.0.0.1 (kernel-chosen ports) in a
temporary directory, drives them with one asyncio process of aiohttp clients (each client
sends its next request when the previous one is answered), and prints a table of rate and
latency percentiles. Comparison with etcd and PySyncObj (issue 4) is not done yet.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_cluster(root: Path, fsync: str) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    procs, https = [], []
    first_http = None
    for i in range(1, 4):
        http, raft = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        args = [sys.executable, "-m", "kvserver", "--id", f"n{i}", "--http", http, "--raft",
                raft, "--cluster-secret", "bench", "--fsync", fsync, str(root / f"n{i}")]
        if first_http is not None:
            args[-1:-1] = ["--join", first_http]
        procs.append(subprocess.Popen(args, stderr=subprocess.DEVNULL))
        https.append(http)
        first_http = first_http or http
        time.sleep(1.0)
    return procs, https


async def wait_ready(https: list[str]) -> str:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"http://{https[0]}/cluster") as response:
                    doc = await response.json()
                voters = [m for m in doc["members"] if m["role"] == "voter"]
                if len(voters) == 3 and doc["leader_http"]:
                    return str(doc["leader_http"])
            except (aiohttp.ClientError, ValueError, KeyError):
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("cluster did not form")


async def drive(url_of: str, op: str, clients: int, seconds: float) -> tuple[float, list[float]]:
    latencies: list[float] = []
    end = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=clients)

    async def client(session: aiohttp.ClientSession, worker: int) -> None:
        i = 0
        while time.perf_counter() < end:
            started = time.perf_counter()
            key = f"k{worker}-{i % 100}"
            if op == "write":
                request = session.put(f"http://{url_of}/kv/{key}", data=b"x" * 16)
            else:
                request = session.get(f"http://{url_of}/kv/k0-0")
            async with request as response:
                await response.read()
                if response.status in (200, 404):
                    latencies.append(time.perf_counter() - started)
            i += 1

    async with aiohttp.ClientSession(connector=connector) as session:
        await session.put(f"http://{url_of}/kv/k0-0", data=b"seed")
        started = time.perf_counter()
        await asyncio.gather(*(client(session, w) for w in range(clients)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", default="1,16,64")
    parser.add_argument("--fsync", default="always")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        procs, https = start_cluster(Path(tmp), args.fsync)
        try:
            leader = asyncio.run(wait_ready(https))
            print(f"# machine: {platform.processor() or platform.machine()}, "
                  f"{os.cpu_count()} cpus, python {platform.python_version()}")
            print("| op | clients | ops/s | p50 ms | p99 ms |")
            print("| --- | --- | --- | --- | --- |")
            for op in ("write", "read"):
                for clients in (int(c) for c in args.clients.split(",")):
                    rate, lat = asyncio.run(drive(leader, op, clients, args.seconds))
                    lat.sort()
                    p50 = statistics.median(lat) * 1000
                    p99 = lat[int(len(lat) * 0.99) - 1] * 1000
                    print(f"| {op} | {clients} | {rate:.0f} | {p50:.2f} | {p99:.2f} |")
            print(json.dumps({"leader": leader}))
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
