"""Request/reply: one request through a tiny in-process client, on anyio memory object streams.

A user's scenario, not one of anybench's: a client sends each request, with an
``anybench.Future`` for its reply, over an anyio memory object stream; one server task receives
the requests in order and resolves each future with its reply. One operation is one request:
the caller sends it, the server handles it, the caller resumes with the reply. The region runs
from the first request to the last reply.

Checks: every caller got the reply to its own request.

Run it on every installed runtime (asyncio, uvloop, trio, ...)::

    anybench run request_reply.py --profile quick
"""

from __future__ import annotations

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from anybench import Future, Probe, check

NAME = "request_reply"
OPERATION = "one request through an in-process client: send, serve, reply"
LATENCIES = {"reply": "send -> the caller resumes with its reply"}
#: Requests the stream buffers before a sender waits (a parameter: recorded in the results).
BUFFER = 64

Request = tuple[int, Future[int]]


class Client:
    """Sends requests to the server and awaits their replies."""

    def __init__(self, send: MemoryObjectSendStream[Request]) -> None:
        self._send = send

    async def request(self, value: int) -> int:
        reply: Future[int] = Future()
        await self._send.send((value, reply))
        return await reply


async def serve(receive: MemoryObjectReceiveStream[Request]) -> None:
    """The server: doubles each request's value, in the order the requests arrive."""
    async with receive:
        async for value, reply in receive:
            reply.set_result(2 * value)


async def run(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency  # stamp only in latency rounds: throughput rounds read no clock
    sent_ns = [0] * n
    replied_ns = [0] * n
    replies = [-1] * n
    send, receive = anyio.create_memory_object_stream[Request](BUFFER)
    client = Client(send)

    async def caller(i: int) -> None:
        if stamps:
            sent_ns[i] = clock()
        replies[i] = await client.request(i)
        if stamps:
            replied_ns[i] = clock()

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve, receive)
        probe.start(ops=n)
        async with anyio.create_task_group() as callers:
            for i in range(n):
                callers.start_soon(caller, i)
        probe.stop()
        await send.aclose()

    check(replies == [2 * i for i in range(n)], "a caller did not get the reply to its request")
    probe.record("reply", [r - s for r, s in zip(replied_ns, sent_ns, strict=True)])
