"""One worker per pod: drives sandbox, network, volumes and containers toward the spec, reports status,
and tears everything down (gracefully) when the pod is deleted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time

from pinnace.api import pod_pb2
from pinnace.client import errors
from pinnace.common.logging import get_logger
from pinnace.common.quantity import cpu_millis, to_bytes
from services.nodeagent import envexpand, metrics, mounts, podstate, podstatus
from services.nodeagent.context import AgentContext
from services.nodeagent.nodelocal import HelperUnavailable
from services.nodeagent.podstate import ContainerState, PodState
from services.nodeagent.probes import ProbeTarget, ProbeWorker, run_handler
from services.nodeagent.runtimes.base import ContainerConfig, ContainerExit, ContainerRecord, Mount, StartError

log = get_logger("nodeagent.podworker")

DEFAULT_GRACE = 30


def grace_seconds(pod: pod_pb2.Pod) -> int:
    if pod.metadata.HasField("deletion_grace_period_seconds"):
        return max(0, int(pod.metadata.deletion_grace_period_seconds))
    if pod.spec.HasField("termination_grace_period_seconds"):
        return max(0, int(pod.spec.termination_grace_period_seconds))
    return DEFAULT_GRACE


def pod_limit(pod: pod_pb2.Pod, resource: str) -> int | None:
    """The pod-level limit: max(sum over app containers + sidecars, largest init container), or None
    when some container has no limit for the resource."""
    conv = to_bytes if resource == "memory" else cpu_millis
    apps = [*pod.spec.containers, *(c for c in pod.spec.init_containers if c.restart_policy == "Always")]
    inits = [c for c in pod.spec.init_containers if c.restart_policy != "Always"]
    if not all(resource in c.resources.limits for c in [*apps, *inits]):
        return None
    total = sum(conv(c.resources.limits[resource].value) for c in apps)
    return max([total, *(conv(c.resources.limits[resource].value) for c in inits)])


def container_kind(c: pod_pb2.Container, init: bool) -> str:
    if not init:
        return "app"
    return "sidecar" if c.restart_policy == "Always" else "init"


class PodWorker:
    """Reconciles one pod; `update()` hands it the newest pod, `deleted()` says it is gone from the store."""

    def __init__(self, ctx: AgentContext, pod: pod_pb2.Pod) -> None:
        self.ctx = ctx
        self.pod = pod
        self.uid = pod.metadata.uid
        self.key = f"{pod.metadata.namespace}/{pod.metadata.name}"
        self.wake = asyncio.Event()
        self.gone = False
        self.st = PodState(uid=self.uid, namespace=pod.metadata.namespace, name=pod.metadata.name)
        self.probes: dict[str, dict[str, ProbeWorker]] = {}
        self.waiters: dict[str, asyncio.Task[None]] = {}
        self.stoppers: dict[str, asyncio.Task[None]] = {}
        self.last_status: pod_pb2.PodStatus | None = None
        self.last_key = b""
        self.message = ""
        self.reason = ""  # pod-level status reason (DeadlineExceeded, OutOfpods: phase Failed)
        self.rejected = False
        self.retry_at = 0.0
        self.task: asyncio.Task[None] | None = None
        self.done = asyncio.Event()
        self.running_reported = False
        self.created_mono = time.monotonic()
        self.log = log.bind(pod=self.key, uid=self.uid)

    def event(self, type_: str, reason: str, message: str, container: str = "") -> None:
        if self.ctx.events is not None:
            path = f"spec.containers{{{container}}}" if container else ""
            self.ctx.events.emit(self.pod, type_, reason, message, field_path=path)

    # -- inputs ------------------------------------------------------------------------------
    def update(self, pod: pod_pb2.Pod) -> None:
        self.pod = pod
        self.wake.set()

    def reject(self, reason: str, message: str) -> None:
        """Admission refused: the pod fails at once and nothing runs."""
        self.rejected = True
        self.reason, self.message = reason, message

    def finished(self) -> bool:
        """Terminal (or refused): the pod no longer counts against the node's capacity."""
        return (
            self.rejected
            or self.reason == "DeadlineExceeded"
            or podstatus.phase(self.pod, self.st)
            in (
                "Succeeded",
                "Failed",
            )
        )

    def deleted(self) -> None:
        self.gone = True
        self.wake.set()

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"pod-{self.key}")

    async def stop(self) -> None:
        """Stop the worker (agent shutdown); the pod's processes keep running for the next agent."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        self._cancel_background()

    def _cancel_background(self) -> None:
        for ws in self.probes.values():
            for w in ws.values():
                w.stop()
        self.probes.clear()
        for t in list(self.waiters.values()) + list(self.stoppers.values()):
            t.cancel()
        self.waiters.clear()
        self.stoppers.clear()

    # -- main loop ---------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self.adopt()
            failures = 0
            while True:
                self.wake.clear()
                timeout: float | None
                try:
                    if await self.sync():
                        return
                    failures = 0
                    timeout = self.next_timer()
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    failures += 1
                    self.message = f"{type(e).__name__}: {e}"
                    self.log.warning("pod sync failed", error=self.message, failures=failures)
                    timeout = min(30.0, 0.2 * (2 ** min(failures, 8)))
                    with contextlib.suppress(Exception):
                        await self.report()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout)
        finally:
            self.done.set()

    def _deadline(self) -> float:
        spec = self.pod.spec
        if spec.HasField("active_deadline_seconds") and self.st.start_time:
            return self.st.start_time + max(0, spec.active_deadline_seconds)
        return 0.0

    def next_timer(self) -> float | None:
        now = time.time()
        times = [cs.backoff_until for cs in self.st.containers.values() if cs.backoff_until > now]
        if self._deadline() > now:
            times.append(self._deadline())
        if self.retry_at > now:
            times.append(self.retry_at)
        if not times:
            return 30.0
        return max(0.01, min(times) - now + 0.01)

    async def adopt(self) -> None:
        """Load the persisted state and reattach to containers that still run."""
        saved = podstate.load(self.ctx.pod_dir(self.uid))
        if saved is None:
            if self.uid in await self.ctx.runtime.list_sandbox_uids():
                # leftovers without a state file (wiped data dir): remove them rather than run duplicates
                self.log.warning("removing untracked leftovers of this pod before starting it")
                await self.ctx.runtime.cleanup_pod(self.uid)
            return
        self.st = saved
        keep = {r.id for cs in saved.containers.values() for r in (cs.record, cs.last_record) if r is not None}
        for cid in await self.ctx.runtime.remove_untracked(self.uid, saved.sandbox, keep):
            self.log.warning("removed a container the previous agent did not record", id=cid)
        for c, _kind in self._all_containers():
            cs = self.st.containers.get(c.name)
            if cs is None or cs.record is None or cs.exit is not None:
                continue
            ex = await self.ctx.runtime.container_exit(cs.record)
            if ex is not None:
                self._on_exit(cs, ex)
            else:
                self.log.info("adopted running container", container=c.name, pid=cs.record.pid)
                self._watch(cs)
                self._start_probes(c, cs)
                self._restore_probe_results(c, cs)

    def _restore_probe_results(self, c: pod_pb2.Container, cs: ContainerState) -> None:
        """Keep started/ready as last reported for an adopted container (no Ready flap on agent restart)."""
        assert cs.record is not None
        prev = [
            s
            for s in list(self.pod.status.container_statuses) + list(self.pod.status.init_container_statuses)
            if s.name == c.name and s.container_id == cs.record.id
        ]
        if not prev:
            return
        workers = self.probes.get(c.name, {})
        startup = workers.get("startup")
        if prev[0].started and startup is not None and not cs.started:
            startup.stop()
            startup.result, startup.done = True, True
            cs.started = True
            self._start_main_probes(c, cs, workers, startup.target, lambda: self._probe_changed(c, cs))
        readiness = workers.get("readiness")
        if prev[0].ready and readiness is not None:
            readiness.result = True
            readiness.successes = readiness.success_threshold
        cs.ready = cs.started and (readiness.result if readiness is not None else True)

    def _all_containers(self) -> list[tuple[pod_pb2.Container, str]]:
        spec = self.pod.spec
        return [(c, container_kind(c, True)) for c in spec.init_containers] + [(c, "app") for c in spec.containers]

    def _save(self) -> None:
        podstate.save(self.ctx.pod_dir(self.uid), self.st)

    async def sync(self) -> bool:
        """One reconcile pass; True when the pod is gone and the worker can end."""
        pod = self.pod
        if self.gone or pod.metadata.HasField("deletion_timestamp"):
            await self.terminate(delete_object=not self.gone)
            return True
        st = self.st
        if self.rejected:
            if not self.last_key:
                self.event("Warning", self.reason, self.message)
            await self.report()
            return False
        if not st.start_time:
            st.start_time = time.time()
        # collect exits the waiters noticed
        for cs in st.containers.values():
            if cs.running and cs.record is not None and cs.name not in self.stoppers:
                ex = await self.ctx.runtime.container_exit(cs.record)
                if ex is not None:
                    self._on_exit(cs, ex)
        deadline = self._deadline()
        if deadline and time.time() >= deadline:
            if self.reason != "DeadlineExceeded":
                self.event(
                    "Warning", "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
                )
            self.reason = "DeadlineExceeded"
            self.message = "Pod was active on the node longer than the specified deadline"
            await self._stop_all(grace_seconds(pod), only_running=True)
            await self.report()
            return False
        phase = podstatus.phase(pod, st)
        if phase in ("Succeeded", "Failed"):
            await self._stop_all(grace_seconds(pod), only_running=True)
            await self.release_network()
            await self.report()
            return False
        if not await self.ensure_sandbox():
            await self.report()
            return False
        policy = pod.spec.restart_policy or "Always"
        blocked = False
        for c in pod.spec.init_containers:
            kind = container_kind(c, True)
            cs = st.containers.setdefault(c.name, ContainerState(name=c.name, kind=kind))
            if kind == "sidecar":
                if not self._kill_if_unhealthy(c, cs):
                    await self.ensure_running(c, cs, policy)
                if not (cs.running and cs.started):
                    blocked = True
                    break
                continue
            if cs.exit is not None and cs.exit.exit_code == 0:
                continue
            if not cs.running:
                await self.ensure_running(c, cs, policy)
            blocked = True
            break
        if not blocked:
            for c in pod.spec.containers:
                cs = st.containers.setdefault(c.name, ContainerState(name=c.name, kind="app"))
                if not self._kill_if_unhealthy(c, cs):
                    await self.ensure_running(c, cs, policy)
        await self.report()
        return False

    def _kill_if_unhealthy(self, c: pod_pb2.Container, cs: ContainerState) -> bool:
        """Restart a container whose liveness (or startup) probe failed or whose image changed; True if
        it is being stopped."""
        if c.name in self.stoppers:
            return True
        if cs.running and cs.record is not None and cs.record.image and cs.record.image != c.image:
            cs.spec_changed = True
            self.event("Normal", "Killing", f"Container {c.name} definition changed, will be restarted", c.name)
            self._stop_in_background(c, cs, grace_seconds(self.pod))
            return True
        if not (cs.running and cs.liveness_failed):
            return False
        cs.liveness_failed = False
        workers = self.probes.get(c.name, {})
        probe = workers.get("liveness") or workers.get("startup")
        grace = grace_seconds(self.pod)
        if probe is not None and probe.probe.HasField("termination_grace_period_seconds"):
            grace = int(probe.probe.termination_grace_period_seconds)
        self.log.info("probe failed; restarting container", container=c.name)
        self.event("Normal", "Killing", f"Container {c.name} failed a probe, will be restarted", c.name)
        self._stop_in_background(c, cs, grace)
        return True

    # -- sandbox, network, volumes -------------------------------------------------------------
    async def ensure_sandbox(self) -> bool:
        st, pod, ctx = self.st, self.pod, self.ctx
        if st.sandbox is None or not await ctx.runtime.sandbox_alive(st.sandbox):
            if st.sandbox is not None:
                self.log.warning("sandbox vanished; recreating")
                await self._stop_all(0, only_running=True)
            st.sandbox = await ctx.runtime.create_sandbox(
                self.uid, pod.metadata.name, pod.metadata.namespace, host_network=pod.spec.host_network
            )
            st.network_ready = False
            self._save()
        if not st.network_ready:
            if pod.spec.host_network:
                st.pod_ip = ctx.host_ip
            elif ctx.netagent.available():
                resp = await ctx.netagent.setup_pod(pod, st.sandbox.netns_path)
                st.pod_ip = resp.ip
                if resp.resolv_conf:
                    path = os.path.join(ctx.pod_dir(self.uid), "resolv.conf")
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, "w") as f:
                        f.write(resp.resolv_conf)
                    st.resolv_conf = path
            else:
                self.log.info("no netagent socket; pod gets a loopback-only network namespace")
            st.network_ready = True
            self._save()
        if pod.spec.volumes and not st.volumes_ready:
            if not ctx.volagent.available():
                self.message = f"waiting for the volume agent ({ctx.volagent.socket_path} is absent)"
                self._set_waiting("VolumesNotReady", self.message)
                self.retry_at = time.time() + 2.0
                return False
            try:
                vols = await ctx.volagent.mount_volumes(pod)
            except HelperUnavailable as e:
                self.message = f"waiting for the volume agent: {e}"
                self._set_waiting("VolumesNotReady", self.message)
                self.retry_at = time.time() + 2.0
                return False
            st.volumes = {v.name: (v.host_path, v.read_only) for v in vols}
            st.volumes_ready = True
            self.message = ""
            self._clear_waiting("VolumesNotReady")
            self._save()
        return True

    async def release_network(self) -> None:
        """A finished pod gives back its sandbox and IP (the status keeps the IP it had)."""
        st, ctx = self.st, self.ctx
        if st.network_released or st.sandbox is None or any(cs.running for cs in st.containers.values()):
            return
        if st.sandbox.netns_path and ctx.netagent.available() and st.network_ready:
            with contextlib.suppress(HelperUnavailable):
                await ctx.netagent.teardown_pod(st.namespace, st.name, self.uid, st.sandbox.netns_path)
        await ctx.runtime.remove_sandbox(st.sandbox)
        st.network_released = True
        self._save()
        self.log.info("pod finished; released its network")

    def _set_waiting(self, reason: str, message: str) -> None:
        for c, kind in self._all_containers():
            cs = self.st.containers.setdefault(c.name, ContainerState(name=c.name, kind=kind))
            if cs.record is None:
                cs.waiting_reason, cs.waiting_message = reason, message

    def _clear_waiting(self, reason: str) -> None:
        for cs in self.st.containers.values():
            if cs.waiting_reason == reason:
                cs.waiting_reason, cs.waiting_message = "", ""

    # -- containers --------------------------------------------------------------------------
    async def ensure_running(self, c: pod_pb2.Container, cs: ContainerState, policy: str) -> None:
        if cs.running or c.name in self.stoppers:
            return
        if cs.record is not None and cs.exit is not None and not cs.spec_changed:
            if not podstatus.should_restart(policy, cs.kind, cs.exit):
                return
            if time.time() < cs.backoff_until:
                return
        cs.spec_changed = False
        await self.start_container(c, cs)

    def _config(self, c: pod_pb2.Container, attempt: int) -> ContainerConfig:
        pod = self.pod
        env = envexpand.container_env(pod, c, self.ctx.host_ip)
        if self.st.pod_ip:
            for e in c.env:
                if e.HasField("value_from") and e.value_from.field_ref.field_path == "status.podIP":
                    env[e.name] = self.st.pod_ip
        command = [envexpand.expand(a, env) for a in c.command]
        args = [envexpand.expand(a, env) for a in c.args]
        mnts: list[Mount] = []
        for vm in c.volume_mounts:
            if vm.name not in self.st.volumes:
                raise StartError(f"volume {vm.name!r} is not mounted")
            src, ro = self.st.volumes[vm.name]
            if vm.sub_path:
                src = os.path.join(src, vm.sub_path)
                os.makedirs(src, exist_ok=True)
            mnts.append(Mount(source=src, target=vm.mount_path, read_only=vm.read_only or ro))
        limits = c.resources.limits
        mem = to_bytes(limits["memory"].value) if "memory" in limits else None
        cpu = cpu_millis(limits["cpu"].value) if "cpu" in limits else None
        return ContainerConfig(
            name=c.name,
            image=c.image,
            argv=command + args,
            env=env,
            command=command,
            args=args,
            cwd=c.working_dir,
            mounts=mnts,
            memory_limit=mem,
            cpu_millis=cpu,
            attempt=attempt,
            log_dir=self.ctx.log_dir(self.uid, c.name),
            resolv_conf=self.st.resolv_conf,
            tty=c.tty,
            hostname=(pod.spec.hostname or pod.metadata.name)[:63] if not pod.spec.host_network else "",
            pod_memory_limit=pod_limit(pod, "memory"),
            pod_cpu_millis=pod_limit(pod, "cpu"),
        )

    async def start_container(self, c: pod_pb2.Container, cs: ContainerState) -> None:
        rt = self.ctx.runtime
        assert self.st.sandbox is not None
        if cs.record is not None:
            # a restart: the finished attempt becomes lastState; the one before it is freed
            if cs.last_record is not None and cs.last_record.id != cs.record.id:
                with contextlib.suppress(Exception):
                    await rt.remove_container(cs.last_record)
            cs.last_record, cs.last_exit = cs.record, cs.exit
            cs.restart_count += 1
        attempt = cs.attempts
        cs.attempts += 1
        cs.ready = cs.started = cs.liveness_failed = False
        try:
            if not c.command and rt.name == "host":
                raise StartError("the host runtime needs a command (images are not run)")
            cfg = self._config(c, attempt)
            rec = await rt.start_container(self.st.sandbox, self.uid, cfg)
        except StartError as e:
            now = time.time()
            cs.record = ContainerRecord(
                name=c.name, id=f"{rt.name}://{self.uid}/{c.name}/{attempt}", attempt=attempt, started_at=now
            )
            self.log.warning("container failed to start", container=c.name, error=str(e))
            self.event("Warning", "Failed", f"Error: {e}", c.name)
            metrics.CONTAINER_STARTS.labels("error").inc()
            self._on_exit(cs, ContainerExit(128, 0, "StartError", str(e), now))
            self._save()
            return
        cs.record, cs.exit = rec, None
        cs.waiting_reason = cs.waiting_message = ""
        self._save()
        self.log.debug("container started", container=c.name, attempt=attempt, id=rec.id)
        self.event("Normal", "Started", f"Started container {c.name}", c.name)
        metrics.CONTAINER_STARTS.labels("ok").inc()
        self._watch(cs)
        if c.lifecycle.HasField("post_start"):
            ok, msg = await run_handler(
                c.lifecycle.post_start, self._target(c, cs), float(grace_seconds(self.pod) or 30)
            )
            if not ok:
                self.log.warning("postStart hook failed; killing container", container=c.name, error=msg)
                await rt.signal_container(rec, signal.SIGKILL)
                return
        self._start_probes(c, cs)

    def _watch(self, cs: ContainerState) -> None:
        rec = cs.record
        assert rec is not None

        async def waiter() -> None:
            await self.ctx.runtime.wait_container(rec)
            self.wake.set()

        old = self.waiters.pop(cs.name, None)
        if old is not None:
            old.cancel()
        self.waiters[cs.name] = asyncio.create_task(waiter(), name=f"wait-{self.key}-{cs.name}")

    def _on_exit(self, cs: ContainerState, ex: ContainerExit) -> None:
        cs.exit = ex
        cs.ready = cs.started = cs.liveness_failed = False
        for w in self.probes.pop(cs.name, {}).values():
            w.stop()
        policy = self.pod.spec.restart_policy or "Always"
        if podstatus.should_restart(policy, cs.kind, ex) and not cs.spec_changed:
            ran = ex.finished_at - (cs.record.started_at if cs.record else 0)
            count = 0 if ran > 600 else cs.restart_count
            delay = podstatus.backoff_delay(count, self.ctx.backoff_base, self.ctx.backoff_max)
            cs.backoff_until = time.time() + delay
            if delay > 0:
                self.event("Warning", "BackOff", f"Back-off restarting failed container {cs.name}", cs.name)
        self.log.info("container exited", container=cs.name, exit_code=ex.exit_code, reason=ex.reason)
        metrics.CONTAINER_EXITS.labels(ex.reason or "Unknown").inc()
        self._save()

    # -- probes ------------------------------------------------------------------------------
    def _target(self, c: pod_pb2.Container, cs: ContainerState) -> ProbeTarget:
        ports = {p.name: p.container_port for p in c.ports if p.name}

        async def exec_fn(argv: list[str], timeout: float) -> tuple[int, bytes]:
            return await self.exec_capture(cs, argv, timeout)

        sb = self.st.sandbox
        return ProbeTarget(netns_path=sb.netns_path if sb else "", pod_ip=self.st.pod_ip, ports=ports, exec_fn=exec_fn)

    def _start_probes(self, c: pod_pb2.Container, cs: ContainerState) -> None:
        for w in self.probes.pop(c.name, {}).values():
            w.stop()
        workers: dict[str, ProbeWorker] = {}
        self.probes[c.name] = workers
        target = self._target(c, cs)

        def changed() -> None:
            self._probe_changed(c, cs)

        if c.HasField("startup_probe"):
            workers["startup"] = ProbeWorker("startup", c.startup_probe, target, changed)
            workers["startup"].start()
        else:
            cs.started = True
            self._start_main_probes(c, cs, workers, target, changed)
        cs.ready = cs.started and "readiness" not in workers

    def _start_main_probes(
        self,
        c: pod_pb2.Container,
        cs: ContainerState,
        workers: dict[str, ProbeWorker],
        target: ProbeTarget,
        changed: object,
    ) -> None:
        assert callable(changed)
        if c.HasField("liveness_probe") and "liveness" not in workers:
            workers["liveness"] = ProbeWorker("liveness", c.liveness_probe, target, changed)
            workers["liveness"].start()
        if c.HasField("readiness_probe") and "readiness" not in workers:
            workers["readiness"] = ProbeWorker("readiness", c.readiness_probe, target, changed)
            workers["readiness"].start()

    def _probe_changed(self, c: pod_pb2.Container, cs: ContainerState) -> None:
        workers = self.probes.get(c.name)
        if workers is None or not cs.running:
            return
        startup = workers.get("startup")
        if startup is not None and not cs.started:
            if startup.result:
                cs.started = True
                self._start_main_probes(c, cs, workers, startup.target, lambda: self._probe_changed(c, cs))
            elif startup.failures >= startup.failure_threshold:
                cs.liveness_failed = True
        for kind, w in workers.items():
            if not w.result and w.failures >= w.failure_threshold and w.failures == w.failure_threshold:
                self.event("Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {w.message}", c.name)
                metrics.PROBE_FAILURES.labels(kind).inc()
        liveness = workers.get("liveness")
        if liveness is not None and not liveness.result:
            cs.liveness_failed = True
            liveness.result = True
            liveness.failures = 0
        readiness = workers.get("readiness")
        cs.ready = cs.started and (readiness.result if readiness is not None else True)
        self.wake.set()

    async def exec_capture(self, cs: ContainerState, argv: list[str], timeout: float) -> tuple[int, bytes]:
        """Run a command in the container (exec probes and hooks); (exit code, combined output)."""
        if cs.record is None or self.st.sandbox is None:
            return 1, b"container not running"
        sess = await self.ctx.runtime.exec(self.st.sandbox, cs.record, argv, tty=False, stdin=False)
        out = bytearray()

        async def collect() -> int:
            async for _, data in sess.output():
                if len(out) < 65536:
                    out.extend(data)
            return await sess.wait()

        try:
            code = await asyncio.wait_for(collect(), timeout)
        except TimeoutError:
            await sess.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sess.wait(), 2)
            return 1, b"exec probe timed out"
        return code, bytes(out)

    # -- stopping ----------------------------------------------------------------------------
    def _stop_in_background(self, c: pod_pb2.Container, cs: ContainerState, grace: int) -> None:
        async def run() -> None:
            try:
                await self.stop_container(c, cs, grace)
            finally:
                self.stoppers.pop(c.name, None)
                self.wake.set()

        self.stoppers[c.name] = asyncio.create_task(run(), name=f"stop-{self.key}-{c.name}")

    async def stop_container(self, c: pod_pb2.Container, cs: ContainerState, grace: int) -> None:
        """preStop hook, SIGTERM, wait up to the grace period, SIGKILL."""
        rec = cs.record
        if rec is None or cs.exit is not None:
            return
        rt = self.ctx.runtime
        for w in self.probes.pop(c.name, {}).values():
            w.stop()
        deadline = time.monotonic() + grace
        if c.lifecycle.HasField("pre_stop") and grace > 0:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run_handler(c.lifecycle.pre_stop, self._target(c, cs), float(grace)), grace)
        if await rt.container_exit(rec) is None:
            await rt.signal_container(rec, signal.SIGTERM)
            try:
                await asyncio.wait_for(rt.wait_container(rec), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                await rt.signal_container(rec, signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(rt.wait_container(rec), 15)
        ex = await rt.container_exit(rec)
        if ex is not None and cs.exit is None:
            self._on_exit(cs, ex)

    async def _stop_all(self, grace: int, only_running: bool) -> None:
        spec = self.pod.spec
        groups = [
            [(c, self.st.containers.get(c.name)) for c in spec.containers],
            [(c, self.st.containers.get(c.name)) for c in reversed(spec.init_containers)],
        ]
        for group in groups:
            tasks = [self.stop_container(c, cs, grace) for c, cs in group if cs is not None and cs.running]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def terminate(self, delete_object: bool) -> None:
        """Graceful teardown; then release volumes, network and sandbox, and remove the pod object."""
        ctx, st = self.ctx, self.st
        grace = grace_seconds(self.pod)
        self.log.info("terminating pod", grace=grace)
        for t in list(self.stoppers.values()):
            with contextlib.suppress(Exception):
                await t
        await self._stop_all(grace, only_running=True)
        self._cancel_background()
        for cs in st.containers.values():
            for rec in (cs.record, cs.last_record):
                if rec is not None:
                    with contextlib.suppress(Exception):
                        await ctx.runtime.remove_container(rec)
        await release_pod(ctx, self.uid, self.pod.metadata.namespace, self.pod.metadata.name, st, self.pod)
        if delete_object:
            with contextlib.suppress(errors.NotFound):
                await ctx.client.delete(
                    pod_pb2.Pod,
                    self.pod.metadata.name,
                    namespace=self.pod.metadata.namespace,
                    grace_period_seconds=0,
                    uid=self.uid,
                )
        self.log.info("pod removed")

    # -- status ------------------------------------------------------------------------------
    async def report(self) -> None:
        now = time.time()
        pod = pod_pb2.Pod()
        pod.CopyFrom(self.pod)
        if self.last_status is not None:
            pod.status.CopyFrom(self.last_status)
        status = podstatus.build_status(pod, self.st, self.ctx.host_ip, now, self.message, self.reason)
        key = podstatus.status_key(status)
        if key == self.last_key:
            return
        out = pod_pb2.Pod()
        out.metadata.name = self.pod.metadata.name
        out.metadata.namespace = self.pod.metadata.namespace
        out.metadata.uid = self.uid
        out.status.CopyFrom(status)
        try:
            await self.ctx.client.update_status(out)
        except errors.NotFound:
            return
        self.last_status, self.last_key = status, key
        metrics.STATUS_UPDATES.inc()
        if status.phase == "Running" and not self.running_reported:
            self.running_reported = True
            metrics.POD_START.observe(max(0.0, time.monotonic() - self.created_mono))
            if self.ctx.on_running is not None:
                self.ctx.on_running(self.uid, now)


async def release_pod(
    ctx: AgentContext, uid: str, namespace: str, name: str, st: PodState | None, pod: pod_pb2.Pod | None
) -> None:
    """Release what a pod holds on the node: volumes, network, sandbox, runtime leftovers, its directory."""
    had_volumes = bool(st and (st.volumes_ready or st.volumes)) or bool(pod and pod.spec.volumes)
    pod_dir = ctx.pod_dir(uid)
    if had_volumes or mounts.mounts_under(pod_dir):
        if ctx.volagent.available():
            await ctx.volagent.unmount_volumes(namespace, name, uid)
        else:
            log.warning("volume agent absent; cannot unmount volumes", pod=f"{namespace}/{name}")
    netns_path = st.sandbox.netns_path if st and st.sandbox else ""
    host_network = bool(pod and pod.spec.host_network) or bool(st and st.sandbox and not st.sandbox.netns_path)
    if ctx.netagent.available() and (st is None or st.network_ready) and not host_network:
        try:
            await ctx.netagent.teardown_pod(namespace, name, uid, netns_path)
        except HelperUnavailable as e:
            log.warning("netagent teardown failed", pod=f"{namespace}/{name}", error=str(e))
    if st is not None and st.sandbox is not None:
        await ctx.runtime.remove_sandbox(st.sandbox)
    await ctx.runtime.cleanup_pod(uid)
    if not mounts.mounts_under(pod_dir):
        await asyncio.to_thread(shutil.rmtree, pod_dir, True)
    else:
        log.warning("mounts remain under the pod directory; keeping it", dir=pod_dir)
