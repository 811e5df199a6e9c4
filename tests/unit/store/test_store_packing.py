"""Packed proposals: encoding, apply on a real MVCCStore, and the packer in front of a replicator."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.store import encoding as enc
from services.store.local_replicator import LocalReplicator
from services.store.mvcc import MVCCStore
from services.store.packing import ProposalPacker
from services.store.replication import Unavailable


def put(key: str, value: bytes = b"v") -> bytes:
    return enc.encode_txn(enc.Txn([enc.Compare(key, enc.CMP_NOT_EXISTS)], [enc.Op(enc.OP_PUT, key, value)]))


def test_multi_roundtrip_and_truncation() -> None:
    cmds = [put(f"/k/{i}", bytes([i]) * i) for i in range(5)]
    data = enc.encode_multi(cmds)
    assert enc.decode_multi(data) == cmds
    assert enc.decode_multi_result(enc.result_multi([b"a", b""])) == [b"a", b""]
    for cut in range(1, len(data)):
        with pytest.raises(ValueError):
            enc.decode_multi(data[:cut])
    with pytest.raises(ValueError):
        enc.decode_multi(data + b"x")
    with pytest.raises(ValueError):
        enc.decode_multi(cmds[0])


def test_multi_applies_in_order_each_at_its_revision(tmp_path: Path) -> None:
    store = MVCCStore(str(tmp_path))
    try:
        multi = enc.encode_multi([put("/k/a"), put("/k/a"), b"\x54garbage", put("/k/b"), enc.encode_noop()])
        (res,) = store.apply_batch([(7, multi)])
        subs = [enc.decode_result(r) for r in enc.decode_multi_result(res)]
        assert [s.ok for s in subs] == [True, False, False, True, False]
        assert (subs[0].revision, subs[3].revision) == (1, 2)
        assert subs[1].failed_index == 0  # the second create of /k/a failed its compare
        assert "malformed txn" in subs[2].error and "malformed txn" in subs[4].error
        assert store.applied_index() == 7 and store.revision() == 2
        assert store.get("/k/b") is not None
        assert [e.revision for e in store.history(0, "/k/", "/k0")] == [1, 2]
        (again,) = store.apply_batch([(7, multi)])  # replayed after a restart: nothing happens twice
        assert enc.decode_result(again).error == "already applied" and store.revision() == 2
        (bad,) = store.apply_batch([(8, b"\x4d\x00\x05")])
        assert "malformed multi command" in enc.decode_result(bad).error and store.applied_index() == 8
    finally:
        store.close()


async def test_packer_packs_one_loop_turn_and_answers_each(tmp_path: Path) -> None:
    store = MVCCStore(str(tmp_path))
    rep = LocalReplicator(store)
    await rep.start()
    packer = ProposalPacker(rep.propose, max_packed=8)
    try:
        res = await asyncio.gather(*(packer.propose(put(f"/k/{i % 10}")) for i in range(20)))
        decoded = [enc.decode_result(r) for r in res]
        assert [r.ok for r in decoded] == [True] * 10 + [False] * 10
        assert [r.revision for r in decoded[:10]] == list(range(1, 11))  # in proposal order
        assert packer.packed_commands == 3  # 20 txns, at most 8 to a command
        assert store.applied_index() == 3

        lone = enc.decode_result(await packer.propose(put("/k/lone")))
        assert lone.ok and packer.packed_commands == 3 and store.applied_index() == 4  # sent as it is

        packer.max_bytes = 5000  # by size too: 2 + 2 + 1 (a txn over the limit goes alone) + 2
        sizes = [2000, 2000, 2000, 2000, 6000, 100, 100]
        res = await asyncio.gather(*(packer.propose(put(f"/s/{i}", b"x" * n)) for i, n in enumerate(sizes)))
        assert all(enc.decode_result(r).ok for r in res)
        assert packer.packed_commands == 6 and store.applied_index() == 8
    finally:
        await rep.stop()
        store.close()


async def test_packer_failures_and_cancelled_proposers() -> None:
    sent: list[bytes] = []

    async def failing(cmd: bytes) -> bytes:
        sent.append(cmd)
        raise Unavailable("no leader")

    packer = ProposalPacker(failing)
    results = await asyncio.gather(*(packer.propose(put(f"/k/{i}")) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results) and len(sent) == 1

    async def error_result(cmd: bytes) -> bytes:
        return enc.result_error("store apply failed")

    packer = ProposalPacker(error_result)
    res = await asyncio.gather(*(packer.propose(put(f"/k/{i}")) for i in range(3)))
    assert [enc.decode_result(r).error for r in res] == ["store apply failed"] * 3

    seen: list[bytes] = []

    async def recording(cmd: bytes) -> bytes:
        seen.append(cmd)
        return enc.result_multi([enc.result_ok(1)] * len(enc.decode_multi(cmd)))

    packer = ProposalPacker(recording)
    tasks = [asyncio.create_task(packer.propose(put(f"/k/{i}"))) for i in range(3)]
    await asyncio.sleep(0)  # all three are pending now
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    assert enc.decode_multi(seen[0]) == [put("/k/0"), put("/k/2")]  # the cancelled txn never went out
