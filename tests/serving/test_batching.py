"""MicroBatcher on its own: batches bounded by size and wait, grouped by key, failures isolated, queue bounded."""

from __future__ import annotations

import asyncio
import threading

import pytest

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.serving.http.batching import MicroBatcher, ServerBusyError


def _run(coro):
    return asyncio.run(coro)


def test_concurrent_calls_share_batches_bounded_by_max_batch() -> None:
    calls: list[tuple[str, list[int]]] = []
    sizes: list[int] = []

    def fn(key, payloads):
        calls.append((key, list(payloads)))
        return [(key, p * 10) for p in payloads]

    async def scenario():
        batcher = MicroBatcher(fn, max_batch=4, max_wait=0.2, on_batch=lambda n, s: sizes.append(n))
        await batcher.start()
        try:
            keys = ["a" if i % 3 else "b" for i in range(10)]
            return keys, await asyncio.gather(*(batcher.submit(k, i) for i, k in enumerate(keys)))
        finally:
            await batcher.stop()

    keys, results = _run(scenario())
    assert results == [(k, i * 10) for i, k in enumerate(keys)]  # every caller gets its own answer
    assert sum(sizes) == 10 and max(sizes) <= 4 and len(sizes) == 3  # 4 + 4 + 2
    assert all(all(keys[p] == key for p in payloads) for key, payloads in calls)  # one key per call


def test_a_failing_request_does_not_fail_the_others() -> None:
    def fn(key, payloads):
        if "bad" in payloads:
            raise CLLM4RecError("bad payload")
        return [p.upper() for p in payloads]

    async def scenario():
        batcher = MicroBatcher(fn, max_batch=8, max_wait=0.1)
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit("k", p) for p in ("x", "bad", "y")), return_exceptions=True)
        finally:
            await batcher.stop()

    good1, bad, good2 = _run(scenario())
    assert (good1, good2) == ("X", "Y")
    assert isinstance(bad, CLLM4RecError) and "bad payload" in str(bad)


def test_full_queue_answers_busy_and_wait_is_bounded() -> None:
    gate, entered = threading.Event(), threading.Event()

    def slow(key, payloads):
        entered.set()
        gate.wait(5)
        return list(payloads)

    async def scenario():
        batcher = MicroBatcher(slow, max_batch=1, max_wait=0.0, max_queue=2)
        await batcher.start()
        try:
            first = asyncio.create_task(batcher.submit("k", 1))  # taken by the worker, blocks in the model thread
            assert await asyncio.to_thread(entered.wait, 5)
            queued = [asyncio.create_task(batcher.submit("k", n)) for n in (2, 3)]
            for _ in range(10_000):  # until the two submissions are queued behind the blocked one
                if batcher._queue.qsize() == 2:
                    break
                await asyncio.sleep(0)
            with pytest.raises(ServerBusyError):
                await batcher.submit("k", 4)
            gate.set()
            return await asyncio.gather(first, *queued)
        finally:
            await batcher.stop()

    assert _run(scenario()) == [1, 2, 3]


def test_bad_settings_are_errors() -> None:
    with pytest.raises(CLLM4RecError):
        MicroBatcher(lambda k, p: p, max_batch=0)
    with pytest.raises(CLLM4RecError):
        MicroBatcher(lambda k, p: p, max_wait=-1)
