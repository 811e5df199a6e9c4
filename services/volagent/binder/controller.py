"""The binder: informers on PVs, claims, classes, pods and nodes feed one work queue of keys
("pvc/<ns>/<name>", "pv/<name>"); workers reconcile each key toward a consistent binding.

Binding writes, in this order, each a compare-and-swap on resource_version:
  1. PV.spec.claimRef (the claim, with its uid)      <- the binding decision; CAS picks one winner
  2. PV.status.phase = Bound
  3. PVC.spec.volumeName
  4. PVC.status (Bound, capacity, access modes)
A crash anywhere in between leaves a PV whose claimRef names a claim that is not (fully) bound
to it; on restart the claim's sync finds that PV through the claimRef index and finishes the
job, so both sides always end up agreeing. A write that loses a race raises Conflict and the
key is retried from fresh state.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.message import Message

from pinnace.api import cluster_pb2, node_pb2, pod_pb2, storage_pb2
from pinnace.client import AsyncClient, Informer, WorkQueue, errors, run_workers
from pinnace.client.events import EventRecorder
from pinnace.common.logging import get_logger
from services.volagent import metrics
from services.volagent.binder import matching as mt
from services.volagent.binder import provision, release
from services.volagent.binder.available import AvailableIndex, SizeIndex

log = get_logger("volagent.binder")

M = TypeVar("M", bound=Message)
PV = storage_pb2.PersistentVolume
PVC = storage_pb2.PersistentVolumeClaim
UNSET_CLASS = "\x00unset"
WAKE_CLAIMS_PER_VOLUME = 2  # pending claims looked at when a volume becomes available
CONFLICT_RETRY = 0.05  # seconds before a key that lost a compare-and-swap is looked at again
EVENT_COMPONENT = "pv-binder"  # source.component of the binder's Events
EVENT_QUEUE = 10000  # Events waiting to be written before more are dropped
# Test hook: exit right after the PV side of a binding is written (binder crash test).
CRASH_ENV = "PINNACE_BINDER_CRASH_AFTER_PV_BIND"


def event_recorder(client: AsyncClient, component: str = EVENT_COMPONENT) -> EventRecorder:
    """The binder's Event recorder (the SDK's, named after this host); Binder.run() starts and stops it."""
    return EventRecorder(client, component, host=socket.gethostname(), capacity=EVENT_QUEUE)


def _rv(obj: Message) -> int:
    try:
        return int(obj.metadata.resource_version or 0)  # type: ignore[attr-defined]
    except ValueError:
        return 0


def _copy(obj: M) -> M:
    new = type(obj)()
    new.CopyFrom(obj)
    return new


def _raw_class(claim: PVC) -> str:
    return claim.spec.storage_class_name if claim.spec.HasField("storage_class_name") else UNSET_CLASS


class Binder:
    """See the module docstring. Run with `await Binder(...).run()`; cancel to stop."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        provision_dir: str = "/var/lib/pinnace/volumes",
        reclaim_roots: list[str] | None = None,
        workers: int = 32,
        recorder: EventRecorder | None = None,
        resync_period: float = 30.0,
        node_name: str = "",
    ) -> None:
        self.client = client
        self.node_name = node_name  # where this binder runs: it can only touch data on this node
        self.provision_dir = os.path.abspath(provision_dir)
        self.reclaim_roots = [self.provision_dir, *(reclaim_roots or [])]
        self.workers = workers
        self.events = recorder or event_recorder(client)
        self.queue: WorkQueue[str] = WorkQueue("pv-binder")
        self.pvs: Informer[PV] = Informer(client, PV, resync_period=resync_period)
        self.pvcs: Informer[PVC] = Informer(client, PVC, resync_period=resync_period)
        self.classes: Informer[storage_pb2.StorageClass] = Informer(client, storage_pb2.StorageClass)
        self.pods: Informer[pod_pb2.Pod] = Informer(client, pod_pb2.Pod)
        self.nodes: Informer[node_pb2.Node] = Informer(client, node_pb2.Node)
        # Objects this binder wrote, newer than the informer may know yet (client-go's "assume cache").
        self._written: dict[str, Message] = {}
        self._pending_notice: set[str] = set()
        self._reserved: set[str] = set()  # PVs a worker is binding right now
        self.available = AvailableIndex()
        self._woken: set[str] = set()  # claims queued because a volume became available
        self.pending = SizeIndex()  # unbound claims by raw storage class and requested bytes
        self._running = False
        self.conflicts = 0
        self.binds = 0
        self._setup_handlers()

    # -- wiring --------------------------------------------------------------------------------

    def _setup_handlers(self) -> None:
        self.pvs.add_index("claimRef", lambda pv: [mt.claim_key(pv.spec.claim_ref.namespace, pv.spec.claim_ref.name)]
                           if pv.spec.claim_ref.name else [])  # fmt: skip
        self.pvs.add_index("class", lambda pv: [pv.spec.storage_class_name])
        self.pvcs.add_index("volumeName", lambda c: [c.spec.volume_name] if c.spec.volume_name else [])
        self.pods.add_index("claims", self._pod_claims)
        self.pods.add_index("usedClaims", self._all_pod_claims)

        def pv_event(pv: PV) -> None:
            self.queue.add("pv/" + pv.metadata.name)
            newest = self._pv(pv.metadata.name)
            was = pv.metadata.name in self.available
            if newest is None:
                self.available.remove(pv.metadata.name)
            elif self.available.track(newest) and not was and self._running:
                self._enqueue_pending_claims(newest)
            for c in self.pvcs.by_index("volumeName", pv.metadata.name):
                self.queue.add(f"pvc/{c.metadata.namespace}/{c.metadata.name}")
            if pv.spec.claim_ref.name:
                self.queue.add(f"pvc/{pv.spec.claim_ref.namespace}/{pv.spec.claim_ref.name}")

        def pvc_event(c: PVC) -> None:
            newest = self._pvc(c.metadata.namespace, c.metadata.name)  # drops our copy once the cache caught up
            self._track_claim(newest or c)
            self.queue.add(f"pvc/{c.metadata.namespace}/{c.metadata.name}")

        def pvc_deleted(c: PVC) -> None:
            self.pending.remove(mt.claim_key(c.metadata.namespace, c.metadata.name))
            self._written.pop(f"pvc/{c.metadata.namespace}/{c.metadata.name}", None)
            for pv in self.pvs.by_index("claimRef", mt.claim_key(c.metadata.namespace, c.metadata.name)):
                self.queue.add("pv/" + pv.metadata.name)

        def pod_event(p: pod_pb2.Pod) -> None:
            for key in self._pod_claims(p):
                self.queue.add("pvc/" + key)

        def pv_deleted(pv: PV) -> None:
            self._written.pop("pv/" + pv.metadata.name, None)
            self.available.remove(pv.metadata.name)
            pv_event(pv)

        self.pvs.add_handler(on_add=pv_event, on_update=lambda _o, n: pv_event(n), on_delete=pv_deleted)
        self.pvcs.add_handler(on_add=pvc_event, on_update=lambda _o, n: pvc_event(n), on_delete=pvc_deleted)

        def pod_gone(p: pod_pb2.Pod) -> None:
            for key in self._all_pod_claims(p):
                self.queue.add("pvc/" + key)  # a deleting claim may be free now

        self.pods.add_handler(on_add=pod_event, on_update=lambda _o, n: pod_event(n), on_delete=pod_gone)

    @staticmethod
    def _pod_claims(pod: pod_pb2.Pod) -> list[str]:
        return Binder._all_pod_claims(pod) if pod.spec.node_name else []

    @staticmethod
    def _all_pod_claims(pod: pod_pb2.Pod) -> list[str]:
        ns = pod.metadata.namespace
        return [
            mt.claim_key(ns, v.persistent_volume_claim.claim_name)
            for v in pod.spec.volumes
            if v.HasField("persistent_volume_claim")
        ]

    def _enqueue_pending_claims(self, pv: PV) -> None:
        cls = pv.spec.storage_class_name
        keys = [cls]
        if cls == mt.default_class(self.classes.list()):
            keys.append(UNSET_CLASS)
        # Only claims this volume can serve, largest request first, and only a few that are not
        # already woken and waiting: waking every pending claim for every new volume is quadratic.
        # (The periodic resync looks at every claim anyway.)
        cap = mt.capacity_bytes(pv)
        for k in keys:
            for key in self.pending.largest_up_to(k, cap, WAKE_CLAIMS_PER_VOLUME, self._woken):
                self._woken.add(key)
                self.queue.add("pvc/" + key)

    async def run(self) -> None:
        """Start the informers, then reconcile until cancelled."""
        informers = (self.classes, self.nodes, self.pods, self.pvs, self.pvcs)
        own_events = not self.events.running  # a recorder someone else runs is theirs to stop
        self.events.start()
        try:
            for inf in informers:
                await inf.start()
            for inf in informers:
                await inf.wait_synced()
            self._running = True
            for c in self.pvcs.list():
                self.queue.add(f"pvc/{c.metadata.namespace}/{c.metadata.name}")
            log.info("binder running", volumes=len(self.pvs), claims=len(self.pvcs), available=len(self.available))
            await run_workers(self.queue, self.reconcile, self.workers, name="pv-binder")
        finally:
            self.queue.shutdown()
            for inf in informers:
                await inf.stop()
            if own_events:
                await self.events.stop()

    # -- cache access --------------------------------------------------------------------------

    def _newest(self, key: str, cached: M | None) -> M | None:
        written = self._written.get(key)
        if written is None:
            return cached
        if cached is None or _rv(written) > _rv(cached):
            return written  # type: ignore[return-value]
        del self._written[key]
        return cached

    def _pv(self, name: str) -> PV | None:
        pv = self._newest("pv/" + name, self.pvs.get(name))
        return None if pv is None or pv.metadata.name == "" else pv

    def _pvc(self, ns: str, name: str) -> PVC | None:
        c = self._newest(f"pvc/{ns}/{name}", self.pvcs.get(mt.claim_key(ns, name)))
        return None if c is None or c.metadata.name == "" else c

    def _remember(self, obj: Message) -> None:
        m = obj.metadata  # type: ignore[attr-defined]
        key = f"pvc/{m.namespace}/{m.name}" if m.namespace else f"pv/{m.name}"
        self._written[key] = obj
        if isinstance(obj, PV):
            self.available.track(obj)
        elif isinstance(obj, PVC):
            self._track_claim(obj)

    def _track_claim(self, c: PVC) -> None:
        key = mt.claim_key(c.metadata.namespace, c.metadata.name)
        if c.spec.volume_name or c.status.phase == "Bound" or c.metadata.HasField("deletion_timestamp"):
            self.pending.remove(key)
        else:
            self.pending.put(key, _raw_class(c), mt.requested_bytes(c))

    async def write(self, obj: M, status: bool = False) -> M:
        new = await (self.client.update_status(obj) if status else self.client.update(obj))
        self._remember(new)
        return new

    # -- reconcile -----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        """One key; a lost compare-and-swap is not a failure: look again shortly, from fresh state."""
        kind, _, rest = key.partition("/")
        self._woken.discard(rest)
        try:
            if kind == "pvc":
                ns, _, name = rest.partition("/")
                return await self.sync_claim(ns, name)
            return await self.sync_volume(rest)
        except errors.Conflict:
            self.conflicts += 1
            metrics.CONFLICTS.inc()
            return CONFLICT_RETRY

    async def sync_claim(self, ns: str, name: str) -> float | None:
        claim = self._pvc(ns, name)
        if claim is None:
            return None
        if claim.metadata.HasField("deletion_timestamp"):
            return await self._finish_claim_deletion(claim)
        if claim.status.phase == "Bound" and claim.spec.volume_name:
            return await self._check_bound_claim(claim)
        if claim.spec.volume_name:
            return await self._sync_prebound_claim(claim)
        # A PV that names this claim: pre-bound by the user, or a binding a crash interrupted.
        for cached in self.pvs.by_index("claimRef", mt.claim_key(ns, name)):
            pv = self._pv(cached.metadata.name) or cached
            if mt.ref_matches(pv, claim) and not pv.metadata.HasField("deletion_timestamp"):
                if not pv.spec.claim_ref.uid:  # pre-bound by a user: it must still fit
                    why = mt.mismatch(claim, pv, mt.claim_class(claim, mt.default_class(self.classes.list())))
                    if why:
                        msg = f"volume {pv.metadata.name} is pre-bound to this claim but does not fit: {why}"
                        await self._pending(claim, "VolumeMismatch", msg)
                        return None
                await self.bind(pv, claim)
                return None
        cls = mt.claim_class(claim, mt.default_class(self.classes.list()))
        sc = self.classes.get(cls) if cls else None
        node: str | None = None
        if sc is not None and sc.volume_binding_mode == "WaitForFirstConsumer":
            node = self._selected_node(claim)
            if node is None:
                await self._pending(
                    claim, "WaitForFirstConsumer", "waiting for first consumer to be created before binding"
                )
                return None
        labels = self._node_labels(node) if node else None
        best = self._best_available(claim, cls, labels)
        if best is not None:
            # Reserve it before the first await so that no other worker of ours picks it meanwhile.
            self._reserved.add(best.metadata.name)
            try:
                await self.bind(best, claim)
            finally:
                self._reserved.discard(best.metadata.name)
            return None
        if sc is not None and sc.provisioner == provision.PROVISIONER and not claim.spec.HasField("selector"):
            await self._provision(claim, sc, node)
            return None
        if sc is not None and sc.provisioner not in ("", "kubernetes.io/no-provisioner"):
            why = f"waiting for a volume to be created by external provisioner {sc.provisioner!r}"
            await self._pending(claim, "ExternalProvisioning", why)
            return None
        why = (
            "no persistent volumes available for this claim and no storage class is set"
            if not cls
            else f"no persistent volumes available for this claim in storage class {cls!r}"
        )
        await self._pending(claim, "FailedBinding", why)
        return None

    async def _finish_claim_deletion(self, claim: PVC) -> float | None:
        """pvc-protection: the claim goes (and its volume is released) once no pod uses it."""
        if mt.PVC_PROTECTION not in claim.metadata.finalizers:
            return None
        key = mt.claim_key(claim.metadata.namespace, claim.metadata.name)
        users = sorted(
            p.metadata.name
            for p in self.pods.by_index("usedClaims", key)
            if p.status.phase not in ("Succeeded", "Failed")
        )
        if users:
            await self._pending_note(
                claim, "ClaimInUse", f"deletion waits for pods using the claim: {', '.join(users)}"
            )
            return None  # the pods' deletion brings the claim back into the queue
        new = _copy(claim)
        new.metadata.finalizers.remove(mt.PVC_PROTECTION)
        await self.client.update(new)
        return None

    async def _pending_note(self, claim: PVC, reason: str, message: str) -> None:
        key = f"{claim.metadata.namespace}/{claim.metadata.name}/{claim.metadata.uid}/{reason}"
        if key not in self._pending_notice:
            self._pending_notice.add(key)
            self.events.emit(claim, "Normal", reason, message)

    def _best_available(self, claim: PVC, cls: str, labels: dict[str, str] | None) -> PV | None:
        """The smallest available volume that fits (the index is sorted by capacity)."""
        for name in self.available.candidates(cls, mt.requested_bytes(claim)):
            if name in self._reserved:
                continue
            pv = self._pv(name)
            if pv is None or not mt.is_available(pv):
                continue
            if not mt.mismatch(claim, pv, cls) and mt.node_matches(pv, labels):
                return pv
        return None

    async def _pending(self, claim: PVC, reason: str, message: str) -> None:
        key = f"{claim.metadata.namespace}/{claim.metadata.name}/{claim.metadata.uid}/{reason}"
        if key not in self._pending_notice:
            self._pending_notice.add(key)
            self.events.emit(claim, "Normal" if reason == "WaitForFirstConsumer" else "Warning", reason, message)
        if claim.status.phase != "Pending":
            new = _copy(claim)
            new.status.phase = "Pending"
            await self.write(new, status=True)

    def _selected_node(self, claim: PVC) -> str | None:
        pods = self.pods.by_index("claims", mt.claim_key(claim.metadata.namespace, claim.metadata.name))
        nodes = sorted(p.spec.node_name for p in pods if p.spec.node_name)
        return nodes[0] if nodes else None

    def _node_labels(self, node: str) -> dict[str, str]:
        n = self.nodes.get(node)
        labels = dict(n.metadata.labels) if n is not None else {}
        labels.setdefault(mt.HOSTNAME_LABEL, node)
        return labels

    async def _check_bound_claim(self, claim: PVC) -> float | None:
        pv = self._pv(claim.spec.volume_name)
        if pv is None:
            pv = await self._live(PV, claim.spec.volume_name, None)
        if pv is None:
            if claim.status.phase != "Lost":
                new = _copy(claim)
                new.status.phase = "Lost"
                await self.write(new, status=True)
                self.events.emit(claim, "Warning", "ClaimLost", f"bound volume {claim.spec.volume_name} is gone")
            return None
        if mt.ref_matches(pv, claim):
            if pv.status.phase != "Bound" or not pv.spec.claim_ref.uid:
                await self.bind(pv, claim)
            return None
        if not pv.spec.claim_ref.name:
            await self.bind(pv, claim)  # the volume was unbound under us: bind it back
            return None
        new = _copy(claim)
        new.status.phase = "Lost"
        await self.write(new, status=True)
        self.events.emit(claim, "Warning", "ClaimMisbound", f"volume {pv.metadata.name} is bound to another claim")
        return None

    async def _sync_prebound_claim(self, claim: PVC) -> float | None:
        """The claim names its volume (spec.volumeName): bind exactly that one, if it fits."""
        name = claim.spec.volume_name
        pv = self._pv(name)
        if pv is None:
            await self._pending(claim, "VolumeNotFound", f"volume {name} requested by the claim does not exist")
            return None
        if pv.spec.claim_ref.name and not mt.ref_matches(pv, claim):
            ref = pv.spec.claim_ref
            await self._pending(
                claim, "FailedBinding", f"volume {name} is already bound to claim {ref.namespace}/{ref.name}"
            )
            return None
        cls = mt.claim_class(claim, mt.default_class(self.classes.list()))
        why = mt.mismatch(claim, pv, cls)
        if why:
            await self._pending(claim, "VolumeMismatch", f"cannot bind to requested volume {name}: {why}")
            return None
        await self.bind(pv, claim)
        return None

    async def bind(self, pv: PV, claim: PVC) -> None:
        """Make pv and claim point at each other; each step is skipped when already done."""
        ns, cname = claim.metadata.namespace, claim.metadata.name
        ref = pv.spec.claim_ref
        if ref.uid != claim.metadata.uid or ref.name != cname or ref.namespace != ns:
            new = _copy(pv)
            user_prebound = bool(ref.name) and not ref.uid
            new.spec.claim_ref.Clear()
            r = new.spec.claim_ref
            r.kind, r.api_version, r.namespace, r.name = "PersistentVolumeClaim", "v1", ns, cname
            r.uid, r.resource_version = claim.metadata.uid, claim.metadata.resource_version
            if not user_prebound:
                new.metadata.annotations[mt.BOUND_BY_CONTROLLER] = "yes"
            pv = await self.write(new)
            if os.environ.get(CRASH_ENV) == "1":
                log.warning("crash hook: exiting between the two binding writes", pv=pv.metadata.name)
                os._exit(137)
        if pv.status.phase != "Bound":
            new = _copy(pv)
            new.status.phase, new.status.reason, new.status.message = "Bound", "", ""
            pv = await self.write(new, status=True)
        if (
            claim.spec.volume_name != pv.metadata.name
            or claim.metadata.annotations.get(mt.BIND_COMPLETED) != "yes"
            or mt.PVC_PROTECTION not in claim.metadata.finalizers
        ):
            new_c = _copy(claim)
            new_c.spec.volume_name = pv.metadata.name
            new_c.metadata.annotations[mt.BIND_COMPLETED] = "yes"
            if mt.PVC_PROTECTION not in new_c.metadata.finalizers:
                new_c.metadata.finalizers.append(mt.PVC_PROTECTION)  # kept while pods use the claim
            if pv.metadata.annotations.get(mt.BOUND_BY_CONTROLLER) == "yes":
                new_c.metadata.annotations[mt.BOUND_BY_CONTROLLER] = "yes"
            claim = await self.write(new_c)
        st = claim.status
        want_cap = dict(pv.spec.capacity)
        if (
            st.phase != "Bound"
            or list(st.access_modes) != list(pv.spec.access_modes)
            or {k: v.value for k, v in st.capacity.items()} != {k: v.value for k, v in want_cap.items()}
        ):
            new_c = _copy(claim)
            new_c.status.phase = "Bound"
            del new_c.status.access_modes[:]
            new_c.status.access_modes.extend(pv.spec.access_modes)
            new_c.status.capacity.clear()
            for k, v in want_cap.items():
                new_c.status.capacity[k].CopyFrom(v)
            await self.write(new_c, status=True)
            self.binds += 1
            metrics.BINDS.inc()  # no event for a plain bind (as Kubernetes): it is visible on both objects

    async def _provision(self, claim: PVC, sc: storage_pb2.StorageClass, node: str | None) -> None:
        # WaitForFirstConsumer: the consumer's node (the directory is made there by its volagent).
        # Immediate: this node, where the directory is made now; the PV is pinned to it either way,
        # since hostPath data lives on one node.
        node = node or self.node_name or None
        pv = provision.build_volume(claim, sc, self.provision_dir, node)
        if not self.node_name or node == self.node_name:
            await asyncio.to_thread(provision.make_directory, pv)
        try:
            created = await self.client.create(pv)
            metrics.PROVISIONED.inc()
            self._remember(created)
            self.events.emit(
                claim,
                "Normal",
                "ProvisioningSucceeded",
                f"provisioned volume {pv.metadata.name} at {pv.spec.host_path.path}",
            )
        except errors.AlreadyExists:
            created = await self.client.get(PV, pv.metadata.name, None)
        if mt.ref_matches(created, claim):
            await self.bind(created, claim)

    async def _live(self, kind: type[M], name: str, ns: str | None) -> M | None:
        """A fresh read from the store (the informer may lag); None when it does not exist."""
        try:
            return await self.client.get(kind, name, ns)
        except errors.NotFound:
            return None

    async def sync_volume(self, name: str) -> float | None:
        pv = self._pv(name)
        if pv is None or pv.metadata.HasField("deletion_timestamp"):
            return None
        ref = pv.spec.claim_ref
        if not ref.name:
            if pv.status.phase not in ("Available", "Failed"):
                await self.set_phase(pv, "Available")
            return None
        if not ref.uid:  # pre-bound to a claim by name (by the user, or by `pinnace pv rebind`)
            if pv.status.phase not in ("Available", "Failed"):
                await self.set_phase(pv, "Available")
            self.queue.add(f"pvc/{ref.namespace}/{ref.name}")
            return None
        claim = self._pvc(ref.namespace, ref.name)
        if claim is None or claim.metadata.uid != ref.uid:
            claim = await self._live(PVC, ref.name, ref.namespace)  # never release on a stale cache
        if claim is None or claim.metadata.uid != ref.uid:
            return await self._released(pv)
        if not claim.spec.volume_name:
            self.queue.add(f"pvc/{ref.namespace}/{ref.name}")  # the claim side of the binding is still to do
            return None
        if claim.spec.volume_name == pv.metadata.name:
            if pv.status.phase != "Bound":
                await self.set_phase(pv, "Bound")
            return None
        # The claim is bound to a different volume: undo our half of a lost race.
        if pv.metadata.annotations.get(mt.BOUND_BY_CONTROLLER) == "yes":
            new = _copy(pv)
            new.spec.ClearField("claim_ref")
            new.metadata.annotations.pop(mt.BOUND_BY_CONTROLLER, None)
            pv = await self.write(new)
            await self.set_phase(pv, "Available")
        return None

    async def set_phase(self, pv: PV, phase: str, reason: str = "", message: str = "") -> PV:
        new = _copy(pv)
        new.status.phase, new.status.reason, new.status.message = phase, reason, message
        return await self.write(new, status=True)

    async def _released(self, pv: PV) -> float | None:
        return await release.handle_released(self, pv)


def leader_identity() -> str:
    import socket

    return f"{socket.gethostname()}-{os.getpid()}"


async def run_with_lease(client: AsyncClient, make_binder: Callable[[], Binder], identity: str, **lease: Any) -> None:
    """Run a fresh Binder whenever this process holds Lease pinnace-system/pv-binder."""
    from pinnace.client import LeaderElector

    elector = LeaderElector(client, "pv-binder", identity, **lease)

    async def lead() -> None:
        log.info("became pv-binder leader", identity=identity)
        await make_binder().run()

    def lost() -> None:
        log.info("stopped leading pv-binder", identity=identity)

    await elector.run(lead, lost)


__all__ = ["Binder", "cluster_pb2", "leader_identity", "run_with_lease"]
