"""Binder scenarios, written against any store endpoint (FakeStore in unit/, the real store in e2e/).

Each case takes a `store_endpoint` fixture and a tmp_path; the test modules that import these
cases provide the fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from pinnace.api import meta_pb2, pod_pb2, storage_pb2
from pinnace.client import AsyncClient, errors
from services.volagent.binder.controller import Binder
from tests.support.waiting import eventually_async as wait_for

PV = storage_pb2.PersistentVolume
PVC = storage_pb2.PersistentVolumeClaim


def make_pv(name: str, size: str, path: str, *, cls: str = "", modes: tuple[str, ...] = ("ReadWriteOnce",),
            policy: str = "Retain", labels: dict[str, str] | None = None) -> PV:  # fmt: skip
    pv = PV(metadata=meta_pb2.ObjectMeta(name=name, labels=labels or {}))
    pv.spec.capacity["storage"].value = size
    pv.spec.access_modes.extend(modes)
    pv.spec.persistent_volume_reclaim_policy = policy
    pv.spec.storage_class_name = cls
    pv.spec.host_path.path = path
    return pv


def make_pvc(name: str, size: str, *, cls: str | None = "", modes: tuple[str, ...] = ("ReadWriteOnce",),
             volume: str = "", ns: str = "default") -> PVC:  # fmt: skip
    c = PVC(metadata=meta_pb2.ObjectMeta(name=name, namespace=ns))
    c.spec.access_modes.extend(modes)
    c.spec.resources.requests["storage"].value = size
    if cls is not None:
        c.spec.storage_class_name = cls
    c.spec.volume_name = volume
    return c


async def check_consistent(client: AsyncClient) -> tuple[int, int]:
    """Both sides agree for every binding; returns (bound claims, pending claims)."""
    pvs = {p.metadata.name: p for p in (await client.list_all(PV)).items}
    claims = (await client.list_all(PVC)).items
    bound = pending = 0
    users: dict[str, str] = {}
    for c in claims:
        if c.status.phase == "Bound":
            bound += 1
            pv = pvs[c.spec.volume_name]
            assert pv.spec.claim_ref.uid == c.metadata.uid, (c.metadata.name, pv.spec.claim_ref)
            assert pv.status.phase == "Bound", pv.metadata.name
            assert c.spec.volume_name not in users, f"{c.spec.volume_name} bound twice"
            users[c.spec.volume_name] = c.metadata.name
        else:
            pending += 1
    for pv in pvs.values():
        if pv.status.phase == "Bound":
            assert users.get(pv.metadata.name) == pv.spec.claim_ref.name, pv.metadata.name
    return bound, pending


@contextlib.asynccontextmanager
async def running_binder(endpoint: str, tmp_path: Path, **kw: object) -> AsyncIterator[Binder]:
    client = AsyncClient([endpoint])
    b = Binder(client, provision_dir=str(tmp_path / "provisioned"), reclaim_roots=[str(tmp_path)], **kw)  # type: ignore[arg-type]
    task = asyncio.create_task(b.run())
    try:
        yield b
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()


async def phase(client: AsyncClient, kind: type[PV] | type[PVC], name: str, ns: str | None = None) -> str:
    try:
        obj = await client.get(kind, name, ns)
    except errors.NotFound:
        return "<gone>"
    return obj.status.phase


async def case_smallest_fit_and_mismatches(store_endpoint: str, tmp_path: Path) -> None:
    c = AsyncClient([store_endpoint])
    for name, size in (("big", "5Gi"), ("small", "1Gi"), ("tiny", "100Mi")):
        await c.create(make_pv(name, size, str(tmp_path / name)))
    await c.create(make_pv("fast", "1Gi", str(tmp_path / "fast"), cls="fast"))
    await c.create(make_pv("rox", "1Gi", str(tmp_path / "rox"), modes=("ReadOnlyMany",)))
    await c.create(make_pvc("c1", "500Mi"))
    await c.create(make_pvc("c2", "10Gi"))  # nothing that big
    await c.create(make_pvc("c3", "1Gi", modes=("ReadWriteMany",)))  # nobody offers RWX
    async with running_binder(store_endpoint, tmp_path):
        await wait_for(lambda: _is(c, "c1", "Bound"), what="c1 bound")
        claim = await c.get(PVC, "c1")
        assert claim.spec.volume_name == "small"
        assert claim.status.capacity["storage"].value == "1Gi" and list(claim.status.access_modes) == ["ReadWriteOnce"]
        await wait_for(lambda: _is(c, "c2", "Pending"), what="c2 pending")
        await wait_for(lambda: _is(c, "c3", "Pending"), what="c3 pending")
        await asyncio.sleep(0.3)
        assert await phase(c, PV, "big") == "Available"
        # a class and the ROX volume: matched by class and access modes
        await c.create(make_pvc("c4", "1Gi", cls="fast"))
        await c.create(make_pvc("c5", "1Gi", modes=("ReadOnlyMany",)))
        await wait_for(lambda: _is(c, "c4", "Bound"), what="c4 bound")
        await wait_for(lambda: _is(c, "c5", "Bound"), what="c5 bound")
        assert (await c.get(PVC, "c4")).spec.volume_name == "fast"
        assert (await c.get(PVC, "c5")).spec.volume_name == "rox"
        evs = [e for e in (await c.list_all(_event_kind())).items if e.involved_object.name == "c2"]
        assert any(e.reason == "FailedBinding" for e in evs), evs
        failed = next(e for e in evs if e.reason == "FailedBinding")
        assert failed.type == "Warning" and failed.source.component == "pv-binder" and failed.source.host
        ref = failed.involved_object
        assert (ref.kind, ref.api_version, ref.namespace) == ("PersistentVolumeClaim", "v1", "default") and ref.uid
        assert await check_consistent(c) == (3, 2)
    await c.close()


def _event_kind() -> type:
    from pinnace.api import cluster_pb2

    return cluster_pb2.Event


async def _is(c: AsyncClient, name: str, want: str) -> bool:
    return await phase(c, PVC, name, "default") == want


async def case_prebinding_and_selector(store_endpoint: str, tmp_path: Path) -> None:
    c = AsyncClient([store_endpoint])
    await c.create(make_pv("a", "1Gi", str(tmp_path / "a")))
    await c.create(make_pv("b", "2Gi", str(tmp_path / "b"), labels={"tier": "gold"}))
    await c.create(make_pv("c", "3Gi", str(tmp_path / "c")))
    # the claim names its volume: it gets exactly that one though "a" fits better
    await c.create(make_pvc("named", "1Gi", volume="c"))
    sel = make_pvc("picky", "1Gi")
    sel.spec.selector.match_labels["tier"] = "gold"
    await c.create(sel)
    # a PV pre-bound by the user to a claim by name
    pre = make_pv("d", "9Gi", str(tmp_path / "d"))
    pre.spec.claim_ref.namespace, pre.spec.claim_ref.name = "default", "wants-d"
    await c.create(pre)
    await c.create(make_pvc("wants-d", "1Gi"))
    async with running_binder(store_endpoint, tmp_path):
        for n in ("named", "picky", "wants-d"):
            await wait_for(lambda n=n: _is(c, n, "Bound"), what=f"{n} bound")  # type: ignore[misc]
        assert (await c.get(PVC, "named")).spec.volume_name == "c"
        assert (await c.get(PVC, "picky")).spec.volume_name == "b"
        assert (await c.get(PVC, "wants-d")).spec.volume_name == "d"
        assert await phase(c, PV, "a") == "Available"
        await check_consistent(c)
    await c.close()


async def case_race_two_binders_one_volume(store_endpoint: str, tmp_path: Path) -> None:
    """Two binder instances (no lease: the worst case) and two claims fight for one volume."""
    c = AsyncClient([store_endpoint])
    await c.create(make_pv("only", "1Gi", str(tmp_path / "only")))
    async with running_binder(store_endpoint, tmp_path), running_binder(store_endpoint, tmp_path):
        await asyncio.gather(c.create(make_pvc("x", "1Gi")), c.create(make_pvc("y", "1Gi")))

        async def one_bound() -> bool:
            return sorted([await phase(c, PVC, "x", "default"), await phase(c, PVC, "y", "default")]) == [
                "Bound",
                "Pending",
            ]

        await wait_for(one_bound, what="exactly one claim bound")
        await asyncio.sleep(1.0)  # let both binders settle; nothing may flip
        assert await one_bound()
        assert await check_consistent(c) == (1, 1)
        pv = await c.get(PV, "only", None)
        assert pv.status.phase == "Bound" and pv.spec.claim_ref.name in ("x", "y")
    await c.close()


async def case_recovers_half_binding(store_endpoint: str, tmp_path: Path) -> None:
    """State as a crash between the two writes leaves it: PV claimRef set, claim untouched."""
    c = AsyncClient([store_endpoint])
    claim = await c.create(make_pvc("half", "1Gi"))
    await c.create(make_pv("other", "1Gi", str(tmp_path / "other")))  # a fitting volume it must NOT take
    pv = make_pv("target", "2Gi", str(tmp_path / "target"))
    r = pv.spec.claim_ref
    r.kind, r.namespace, r.name, r.uid = "PersistentVolumeClaim", "default", "half", claim.metadata.uid
    pv.metadata.annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
    await c.create(pv)
    async with running_binder(store_endpoint, tmp_path):
        await wait_for(lambda: _is(c, "half", "Bound"), what="half bound")
        assert (await c.get(PVC, "half")).spec.volume_name == "target"
        assert await phase(c, PV, "other") == "Available"
        await check_consistent(c)
    await c.close()


async def case_reclaim_policies(store_endpoint: str, tmp_path: Path) -> None:
    c = AsyncClient([store_endpoint])
    data = {}
    for policy in ("Retain", "Delete", "Recycle"):
        d = tmp_path / f"data-{policy.lower()}"
        d.mkdir()
        (d / "file").write_text(policy)
        (d / "sub").mkdir()
        (d / "sub" / "x").write_text("x")
        data[policy] = d
        await c.create(make_pv(f"pv-{policy.lower()}", "1Gi", str(d), cls=policy.lower(), policy=policy))
        await c.create(make_pvc(f"c-{policy.lower()}", "1Gi", cls=policy.lower()))
    outside = make_pv("pv-outside", "1Gi", "/etc", cls="outside", policy="Delete")
    await c.create(outside)
    await c.create(make_pvc("c-outside", "1Gi", cls="outside"))
    async with running_binder(store_endpoint, tmp_path):
        for n in ("c-retain", "c-delete", "c-recycle", "c-outside"):
            await wait_for(lambda n=n: _is(c, n, "Bound"), what=f"{n} bound")  # type: ignore[misc]
        for n in ("c-retain", "c-delete", "c-recycle", "c-outside"):
            await c.delete(PVC, n, "default")
        await wait_for(lambda: _pv_is(c, "pv-retain", "Released"), what="retain released")
        await wait_for(lambda: _pv_is(c, "pv-delete", "<gone>"), what="delete gone")
        await wait_for(lambda: _pv_is(c, "pv-recycle", "Available"), what="recycle available")
        await wait_for(lambda: _pv_is(c, "pv-outside", "Failed"), what="outside failed")
        assert (data["Retain"] / "file").read_text() == "Retain"
        assert not data["Delete"].exists()
        assert data["Recycle"].is_dir() and list(data["Recycle"].iterdir()) == []
        assert Path("/etc/hostname").exists() or Path("/etc/passwd").exists()
        failed = await c.get(PV, "pv-outside", None)
        assert "refusing to touch /etc" in failed.status.message
        recycled = await c.get(PV, "pv-recycle", None)
        assert not recycled.spec.claim_ref.name
        # the recycled volume serves a new claim
        await c.create(make_pvc("again", "1Gi", cls="recycle"))
        await wait_for(lambda: _is(c, "again", "Bound"), what="again bound")
    await c.close()


async def _pv_is(c: AsyncClient, name: str, want: str) -> bool:
    return await phase(c, PV, name) == want


async def case_dynamic_provisioning(store_endpoint: str, tmp_path: Path) -> None:
    c = AsyncClient([store_endpoint])
    sc = storage_pb2.StorageClass(metadata=meta_pb2.ObjectMeta(name="standard"), provisioner="pinnace.io/hostpath")
    sc.metadata.annotations["storageclass.kubernetes.io/is-default-class"] = "true"
    await c.create(sc)
    wffc = storage_pb2.StorageClass(
        metadata=meta_pb2.ObjectMeta(name="late"),
        provisioner="pinnace.io/hostpath",
        volume_binding_mode="WaitForFirstConsumer",
        reclaim_policy="Delete",
    )
    await c.create(wffc)
    async with running_binder(store_endpoint, tmp_path):
        claim = await c.create(make_pvc("dyn", "2Gi", cls=None))  # no class: the default one
        await wait_for(lambda: _is(c, "dyn", "Bound"), what="dyn bound")
        pv = await c.get(PV, f"pvc-{claim.metadata.uid}", None)
        assert pv.spec.storage_class_name == "standard" and pv.spec.persistent_volume_reclaim_policy == "Delete"
        assert pv.spec.host_path.path == str(tmp_path / "provisioned" / pv.metadata.name)
        assert Path(pv.spec.host_path.path).is_dir()
        late = await c.create(make_pvc("late", "1Gi", cls="late"))
        await asyncio.sleep(0.5)
        assert await _is(c, "late", "Pending")
        pod = pod_pb2.Pod(metadata=meta_pb2.ObjectMeta(name="user", namespace="default"))
        pod.spec.node_name = "node-7"
        pod.spec.containers.add(name="c", image="busybox")
        pod.spec.volumes.add(name="v").persistent_volume_claim.claim_name = "late"
        await c.create(pod)
        await wait_for(lambda: _is(c, "late", "Bound"), what="late bound after a pod was scheduled")
        lpv = await c.get(PV, f"pvc-{late.metadata.uid}", None)
        expr = lpv.spec.node_affinity.required.node_selector_terms[0].match_expressions[0]
        assert (expr.key, list(expr.values)) == ("kubernetes.io/hostname", ["node-7"])
        # Delete reclaim of a provisioned volume removes its directory and the PV
        await c.delete(PVC, "dyn", "default")
        await wait_for(lambda: _pv_is(c, pv.metadata.name, "<gone>"), what="provisioned pv deleted")
        assert not Path(pv.spec.host_path.path).exists()
    await c.close()


async def case_many(store_endpoint: str, tmp_path: Path, n: int = 1000, budget: float = 10.0) -> float:
    """n claims against n volumes (sizes shuffled); returns seconds from the last create to all bound."""
    c = AsyncClient([store_endpoint])
    sem = asyncio.Semaphore(64)

    async def create(obj: PV | PVC) -> None:
        async with sem:
            await c.create(obj)

    await asyncio.gather(
        *(create(make_pv(f"pv-{i:04d}", f"{1 + i % 10}Gi", str(tmp_path / f"v{i}"))) for i in range(n))
    )
    await asyncio.gather(*(create(make_pvc(f"claim-{i:04d}", f"{1 + (i * 7) % 10}Gi")) for i in range(n)))
    async with running_binder(store_endpoint, tmp_path) as binder:
        t0 = time.monotonic()

        async def all_bound() -> bool:
            return binder.binds >= n

        await wait_for(all_bound, timeout=budget * 6, what=f"{n} claims bound")
        took = time.monotonic() - t0
    bound, pending = await check_consistent(c)
    assert (bound, pending) == (n, 0)
    await c.close()
    return took


async def case_rebind_released_retain(store_endpoint: str, tmp_path: Path) -> None:
    from pinnace.cli.context import CLIError
    from pinnace.cli.pv import rebind
    from pinnace.client import Client

    c = AsyncClient([store_endpoint])
    await c.create(make_pv("keeper", "1Gi", str(tmp_path / "keeper")))
    await c.create(make_pv("decoy", "1Gi", str(tmp_path / "decoy")))
    await c.create(make_pvc("first", "1Gi"))
    sync = Client([store_endpoint])
    try:
        async with running_binder(store_endpoint, tmp_path):
            await wait_for(lambda: _is(c, "first", "Bound"), what="first bound")
            vol = (await c.get(PVC, "first")).spec.volume_name
            other = "decoy" if vol == "keeper" else "keeper"
            data = Path((await c.get(PV, vol, None)).spec.host_path.path)
            data.mkdir(exist_ok=True)
            (data / "data.txt").write_text("precious")
            try:
                await asyncio.to_thread(rebind, sync, vol, "default", "second")
                raise AssertionError("rebind of a Bound volume must fail")
            except CLIError as exc:
                assert "not Released" in exc.message
            await c.delete(PVC, "first", "default")
            await wait_for(lambda: _pv_is(c, vol, "Released"), what="released")
            msg = await asyncio.to_thread(rebind, sync, vol, "apps", "second")
            assert "data kept" in msg and "apps/second" in msg
            await wait_for(lambda: _pv_is(c, vol, "Available"), what="available again")
            # the pre-bound volume waits for exactly that claim: a third claim gets the other one
            third = make_pvc("third", "1Gi")
            await c.create(third)
            await wait_for(lambda: _is(c, "third", "Bound"), what="third bound")
            assert (await c.get(PVC, "third")).spec.volume_name == other
            from pinnace.api import cluster_pb2

            with contextlib.suppress(errors.AlreadyExists):
                await c.create(cluster_pb2.Namespace(metadata=meta_pb2.ObjectMeta(name="apps")))
            await c.create(make_pvc("second", "1Gi", ns="apps"))
            await wait_for(lambda: _phase_ns(c, "second", "apps", "Bound"), what="second bound")
            assert (await c.get(PVC, "second", "apps")).spec.volume_name == vol
            assert (data / "data.txt").read_text() == "precious"
            await check_consistent(c)
    finally:
        sync.close()
        await c.close()


async def _phase_ns(c: AsyncClient, name: str, ns: str, want: str) -> bool:
    return await phase(c, PVC, name, ns) == want


def pin(pv: PV, node: str) -> PV:
    term = pv.spec.node_affinity.required.node_selector_terms.add()
    term.match_expressions.add(key="kubernetes.io/hostname", operator="In", values=[node])
    return pv


async def case_reclaim_on_the_data_node(store_endpoint: str, tmp_path: Path) -> None:
    """The binder runs on node-a; data pinned to node-b is deleted/scrubbed by node-b's reclaimer."""
    from services.volagent.reclaimer import NodeReclaimer

    c = AsyncClient([store_endpoint])
    dirs = {}
    for policy in ("Delete", "Recycle"):
        d = tmp_path / f"b-{policy.lower()}"
        d.mkdir()
        (d / "f").write_text("x")
        dirs[policy] = d
        await c.create(pin(make_pv(f"pv-{policy.lower()}", "1Gi", str(d), cls=policy.lower(), policy=policy), "node-b"))
        await c.create(make_pvc(f"c-{policy.lower()}", "1Gi", cls=policy.lower()))
    rc = AsyncClient([store_endpoint])
    reclaimer = NodeReclaimer(rc, "node-b", [str(tmp_path)])
    rtask = asyncio.create_task(reclaimer.run())
    try:
        async with running_binder(store_endpoint, tmp_path, node_name="node-a"):
            for p in ("delete", "recycle"):
                await wait_for(lambda p=p: _is(c, f"c-{p}", "Bound"), what=f"c-{p} bound")  # type: ignore[misc]
                await c.delete(PVC, f"c-{p}", "default")
            await wait_for(lambda: _pv_is(c, "pv-delete", "<gone>"), what="pv-delete gone")
            await wait_for(lambda: _pv_is(c, "pv-recycle", "Available"), what="pv-recycle available")
            assert not dirs["Delete"].exists()
            assert dirs["Recycle"].is_dir() and not list(dirs["Recycle"].iterdir())
            recycled = await c.get(PV, "pv-recycle", None)
            assert "pinnace.io/reclaim" not in recycled.metadata.annotations
            assert reclaimer.done == 2
            # Immediate provisioning pins the volume to the node that made its directory
            sc = storage_pb2.StorageClass(metadata=meta_pb2.ObjectMeta(name="hp"), provisioner="pinnace.io/hostpath")
            await c.create(sc)
            claim = await c.create(make_pvc("dyn", "1Gi", cls="hp"))
            await wait_for(lambda: _is(c, "dyn", "Bound"), what="dyn bound")
            pv = await c.get(PV, f"pvc-{claim.metadata.uid}", None)
            expr = pv.spec.node_affinity.required.node_selector_terms[0].match_expressions[0]
            assert list(expr.values) == ["node-a"]
    finally:
        rtask.cancel()
        await asyncio.gather(rtask, return_exceptions=True)
        await rc.close()
        await c.close()


async def case_claims_before_volumes(store_endpoint: str, tmp_path: Path, n: int = 300) -> None:
    """Pending claims first, volumes afterwards: each new volume wakes claims it can serve."""
    c = AsyncClient([store_endpoint])
    async with running_binder(store_endpoint, tmp_path) as binder:
        await asyncio.gather(*(c.create(make_pvc(f"early-{i:03d}", "1Gi")) for i in range(n)))

        async def all_pending() -> bool:
            return len(binder.pending) == n

        await wait_for(all_pending, what="claims seen as pending")
        await asyncio.gather(*(c.create(make_pv(f"late-{i:03d}", "1Gi", str(tmp_path / f"l{i}"))) for i in range(n)))

        async def all_bound() -> bool:
            return binder.binds >= n

        await wait_for(all_bound, timeout=60, what=f"{n} early claims bound")  # well before the 30 s resync
    assert await check_consistent(c) == (n, 0)
    await c.close()
