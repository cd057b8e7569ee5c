#!/usr/bin/env python3
"""Holds many idle sockets and live streams open against a learnpulse server, for a while.

    scripts/idle-connections.py --url http://127.0.0.1:8750 --key TOKEN --idle 10000 --streams 2000 --seconds 60

Idle sockets connect and send nothing (as slowloris or a crowd of dead clients would); the
server closes them after `limits.header_read_timeout_secs`, and this script opens them again,
so about `--idle` stay open at any time. Streams are `GET /v1/stream?group=class-N` with the
key (a class dashboard each, over the load generator's 60 classes), read and thrown away. Prints a JSON summary: sockets held, reconnections, stream bytes, refusals.
Used by scripts/idle-bench.sh to measure ingest beside them.
"""
import argparse
import asyncio
import json
import resource
import time
import urllib.parse


async def idle_socket(host, port, stop, stats):
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            stats["refused"] += 1
            await asyncio.sleep(0.5)
            continue
        stats["idle_open"] += 1
        try:
            # Wait for the server to close it (or for the end of the run).
            done = asyncio.ensure_future(reader.read())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({done, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if done.done():
                stats["idle_closed_by_server"] += 1
            for f in (done, stopping):
                f.cancel()
        finally:
            stats["idle_open"] -= 1
            writer.close()


async def stream(host, port, key, query, stop, stats):
    path = f"/v1/stream?{query}" if query else "/v1/stream"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            await writer.drain()
        except OSError:
            stats["refused"] += 1
            await asyncio.sleep(0.5)
            continue
        stats["streams_open"] += 1
        try:
            while not stop.is_set():
                read = asyncio.ensure_future(reader.read(65536))
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait({read, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if not read.done():
                    read.cancel()
                    break
                chunk = read.result()
                if not chunk:
                    stats["streams_ended_by_server"] += 1
                    break
                stats["stream_bytes"] += len(chunk)
        except OSError:
            stats["streams_ended_by_server"] += 1
        finally:
            stats["streams_open"] -= 1
            writer.close()


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--key", required=True, help="a key that may read the stream")
    p.add_argument("--idle", type=int, default=10000)
    p.add_argument("--streams", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--stream-query", default="group=class-{n}",
                   help="each stream's query, {n} = its number mod 60 (the load generator's "
                        "classes: a dashboard per class); '' follows every learner")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    url = urllib.parse.urlparse(args.url)
    host, port = url.hostname, url.port or 80
    stats = dict(idle_open=0, idle_closed_by_server=0, streams_open=0,
                 streams_ended_by_server=0, stream_bytes=0, refused=0)
    stop = asyncio.Event()
    tasks = []
    # Open gradually (a burst of 12,000 connects would be a different test).
    for i in range(args.streams):
        query = args.stream_query.replace("{n}", str(i % 60))
        tasks.append(asyncio.ensure_future(stream(host, port, args.key, query, stop, stats)))
        if i % 200 == 199:
            await asyncio.sleep(0.05)
    for i in range(args.idle):
        tasks.append(asyncio.ensure_future(idle_socket(host, port, stop, stats)))
        if i % 500 == 499:
            await asyncio.sleep(0.05)
    started = time.monotonic()
    low = None
    while time.monotonic() - started < args.seconds:
        await asyncio.sleep(1)
        held = stats["idle_open"] + stats["streams_open"]
        low = held if low is None else min(low, held)
    peak = stats["idle_open"] + stats["streams_open"]
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"held_at_end": peak, "held_at_least": low, **stats}))


asyncio.run(main())
