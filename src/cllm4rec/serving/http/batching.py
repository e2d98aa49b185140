"""Micro-batching: concurrent recommendation requests share one forward pass (docs/DESIGN.md §9).

Requests wait in a queue; one worker takes the first, then gathers more for at most ``max_wait`` seconds or
until ``max_batch`` are in hand, and hands the batch to a single model thread. While a batch is being scored the
next one forms, so under load the batch size grows with the arrival rate and the wait is bounded by one
forward pass. Requests are grouped by a key (kind of request and k) because one scoring call serves one kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cllm4rec.core.errors import CLLM4RecError

BatchFn = Callable[[Hashable, Sequence[Any]], Sequence[Any]]


class ServerBusyError(CLLM4RecError):
    """The request queue is full: the client should retry later (HTTP 503)."""


@dataclass
class _Job:
    key: Hashable
    payload: Any
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Collect concurrent calls into batches and run ``fn(key, payloads)`` once per key in a model thread.

    ``fn`` must return one result per payload, in order; if it raises, each payload of that group is retried
    alone so one bad request cannot fail the others. ``on_batch(size, seconds)`` observes every batch.
    """

    def __init__(
        self,
        fn: BatchFn,
        *,
        max_batch: int = 32,
        max_wait: float = 0.005,
        max_queue: int = 1024,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise CLLM4RecError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait < 0:
            raise CLLM4RecError(f"max_wait must be >= 0, got {max_wait}")
        self.fn, self.max_batch, self.max_wait, self.max_queue = fn, max_batch, max_wait, max_queue
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        """Start the worker (call inside the serving event loop)."""
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cllm4rec-model")
        self._task = asyncio.create_task(self._worker(), name="cllm4rec-batcher")

    async def stop(self) -> None:
        """Stop the worker; queued requests fail with an error."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._queue is not None:
            while not self._queue.empty():
                job = self._queue.get_nowait()
                if not job.future.done():
                    job.future.set_exception(ServerBusyError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._task = self._queue = self._executor = None

    async def submit(self, key: Hashable, payload: Any) -> Any:
        """Queue one request and wait for its result (or its exception)."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Job(key, payload, future))
        except asyncio.QueueFull:
            raise ServerBusyError(f"too many queued requests (more than {self.max_queue}); retry later") from None
        return await future

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._queue is not None
        while True:
            jobs = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(jobs) < self.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    while len(jobs) < self.max_batch and not self._queue.empty():
                        jobs.append(self._queue.get_nowait())
                    break
                try:
                    jobs.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            jobs = [j for j in jobs if not j.future.cancelled()]  # the client went away
            if not jobs:
                continue
            started = time.perf_counter()
            outcomes = await loop.run_in_executor(self._executor, self._run, jobs)
            if self.on_batch is not None:
                self.on_batch(len(jobs), time.perf_counter() - started)
            for job, (ok, value) in zip(jobs, outcomes, strict=True):
                if job.future.done():
                    continue
                if ok:
                    job.future.set_result(value)
                else:
                    job.future.set_exception(value)

    def _run(self, jobs: list[_Job]) -> list[tuple[bool, Any]]:
        """Run one batch in the model thread: one call per key, retried per job if the group fails."""
        outcomes: list[tuple[bool, Any] | None] = [None] * len(jobs)
        groups: dict[Hashable, list[int]] = {}
        for n, job in enumerate(jobs):
            groups.setdefault(job.key, []).append(n)
        for key, members in groups.items():
            try:
                results = self.fn(key, [jobs[n].payload for n in members])
                for n, result in zip(members, results, strict=True):
                    outcomes[n] = (True, result)
            except Exception:  # isolate the failing request(s): each one alone
                for n in members:
                    try:
                        outcomes[n] = (True, self.fn(key, [jobs[n].payload])[0])
                    except Exception as exc:
                        outcomes[n] = (False, exc)
        return outcomes  # type: ignore[return-value]
