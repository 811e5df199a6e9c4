"""WorkQueue: dedup, in-flight re-queue, rate limiting, add_after, shutdown; run_workers."""

from __future__ import annotations

import asyncio

import pytest

from pinnace.client.retry import Backoff
from pinnace.client.workqueue import ItemExponentialBackoff, ShutDown, WorkQueue, run_workers


async def test_dedup_and_fifo() -> None:
    q: WorkQueue[str] = WorkQueue()
    for k in ["a", "b", "a", "c", "b"]:
        q.add(k)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_key_added_while_processing_is_requeued_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    key = await q.get()
    q.add("a")
    assert len(q) == 0  # not handed to a second worker while in flight
    q.done(key)
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0


async def test_get_waits_and_shutdown_wakes() -> None:
    q: WorkQueue[str] = WorkQueue()
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    q.add("x")
    assert await asyncio.wait_for(waiter, 1) == "x"
    waiter2 = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    q.shutdown()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(waiter2, 1)
    q.add("y")
    assert len(q) == 0


async def test_add_after_and_rate_limited() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.02)
    q.add_after("a", 0.05)
    assert len(q) == 0
    await asyncio.sleep(0.1)
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    q.add_rate_limited("b")  # 0.02
    q.add_rate_limited("b")  # earlier pending add wins
    assert q.num_requeues("b") == 2
    await asyncio.sleep(0.06)
    assert await asyncio.wait_for(q.get(), 1) == "b"
    q.forget("b")
    assert q.num_requeues("b") == 0


def test_item_backoff_grows_and_caps() -> None:
    rl: ItemExponentialBackoff[str] = ItemExponentialBackoff(base=0.01, cap=0.1)
    delays = [rl.when("k") for _ in range(6)]
    assert delays[:4] == [0.01, 0.02, 0.04, 0.08]
    assert delays[4:] == [0.1, 0.1]
    assert rl.when("other") == 0.01
    rl.forget("k")
    assert rl.when("k") == 0.01


def test_backoff() -> None:
    b = Backoff(base=1, cap=4, jitter=0)
    assert [b.next() for _ in range(4)] == [1, 2, 4, 4]
    b.reset()
    assert b.next() == 1


async def test_run_workers_requeues_failures_with_backoff() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.01)
    attempts: dict[str, int] = {}
    done = asyncio.Event()

    async def reconcile(key: str) -> None:
        attempts[key] = attempts.get(key, 0) + 1
        if key == "flaky" and attempts[key] < 3:
            raise RuntimeError("not yet")
        if attempts.get("flaky", 0) >= 3 and "ok" in attempts:
            done.set()

    task = asyncio.create_task(run_workers(q, reconcile, workers=3))
    q.add("flaky")
    q.add("ok")
    await asyncio.wait_for(done.wait(), 2)
    assert attempts["flaky"] == 3
    assert q.num_requeues("flaky") == 0  # forgotten after success
    q.shutdown()
    await asyncio.wait_for(task, 1)


async def test_run_workers_never_runs_a_key_twice_concurrently() -> None:
    q: WorkQueue[int] = WorkQueue()
    running: set[int] = set()
    overlap = []
    count = 0

    async def reconcile(key: int) -> None:
        nonlocal count
        if key in running:
            overlap.append(key)
        running.add(key)
        await asyncio.sleep(0.001)
        running.discard(key)
        count += 1

    task = asyncio.create_task(run_workers(q, reconcile, workers=4))
    for _ in range(20):
        for k in range(5):
            q.add(k)
        await asyncio.sleep(0.0005)
    await asyncio.sleep(0.05)
    q.shutdown()
    await asyncio.wait_for(task, 1)
    assert not overlap
    assert count >= 5


async def test_reconcile_returning_seconds_requeues_after() -> None:
    q: WorkQueue[str] = WorkQueue()
    seen = []

    def reconcile(key: str) -> float:
        seen.append(key)
        return 0.02 if len(seen) == 1 else 0

    task = asyncio.create_task(run_workers(q, reconcile))
    q.add("a")
    await asyncio.sleep(0.1)
    assert seen == ["a", "a"]
    q.shutdown()
    await asyncio.wait_for(task, 1)
