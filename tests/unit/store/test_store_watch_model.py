"""Property test: every watcher gets exactly the history after its start revision, in order,
whatever the interleaving of writes, slow consumers and a tiny in-memory window."""

from __future__ import annotations

import asyncio
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinnace.api import store_pb2
from pinnace.api.object_pb2 import Object
from services.store import encoding as enc
from services.store.mvcc import MVCCStore
from services.store.watch import WatchHub


def put(key: str) -> bytes:
    o = Object()
    o.pod.metadata.name = key.rsplit("/", 1)[-1]
    return enc.encode_txn(enc.Txn([], [enc.Op(enc.OP_PUT, key, o.SerializeToString())]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    writes=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3)), min_size=1, max_size=60),
    watchers=st.lists(st.tuples(st.integers(0, 60), st.sampled_from(["a", "b", ""]), st.integers(0, 3)), max_size=6),
    window=st.integers(2, 20),
)
def test_watchers_see_exact_history(
    writes: list[tuple[str, int]], watchers: list[tuple[int, str, int]], window: int
) -> None:
    async def run() -> None:
        with tempfile.TemporaryDirectory() as d:
            store = MVCCStore(d, history_window=0)
            hub = WatchHub(store, window=window)
            hub.attach(asyncio.get_running_loop())
            results: dict[int, list[int]] = {}

            async def watch(w: int, start_rev: int, ns: str, slowness: int) -> None:
                prefix = f"/registry/pods/{ns}/" if ns else "/registry/pods/"
                got: list[int] = []
                results[w] = got
                async for data in hub.messages("pods", prefix, prefix[:-1] + "0", start_rev):
                    got.append(store_pb2.WatchEvent.FromString(data).revision)
                    for _ in range(slowness):
                        await asyncio.sleep(0)

            tasks = []
            plan = sorted(enumerate(watchers), key=lambda x: x[1][0])
            nxt = 0
            for i, (ns, _) in enumerate(writes):
                while nxt < len(plan) and plan[nxt][1][0] <= i:
                    w, (_, wns, slow) = plan[nxt]
                    start = max(0, store.revision() - (w % 3))  # some start in the past
                    tasks.append((w, start, wns, asyncio.create_task(watch(w, start, wns, slow))))
                    nxt += 1
                store.apply_batch([(i + 1, put(f"/registry/pods/{ns}/o{i}"))])
                if i % 3 == 0:
                    await asyncio.sleep(0)
            for _ in range(200):
                await asyncio.sleep(0)
            for w, start, wns, task in tasks:
                task.cancel()
                want = [i + 1 for i, (ns, _) in enumerate(writes) if i + 1 > start and (not wns or ns == wns)]
                if start == 0:  # "from now": everything after the registration point
                    want = want[len(want) - len(results[w]) :] if results[w] else results[w]
                assert results[w] == want, (w, start, wns)

    asyncio.run(run())
