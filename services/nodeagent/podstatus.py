"""Pure functions from what the agent knows about a pod to its status: phase, conditions, containers, QoS."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api import meta_pb2, pod_pb2
from pinnace.common.quantity import parse_quantity
from services.nodeagent.podstate import ContainerState, PodState
from services.nodeagent.runtimes.base import ContainerExit

BACKOFF_BASE = 10.0
BACKOFF_MAX = 300.0
FAILING_REASONS = frozenset({"DeadlineExceeded", "OutOfpods"})  # pod-level reasons that mean phase Failed


def ts(t: float) -> Timestamp:
    out = Timestamp()
    if t > 0:
        out.FromNanoseconds(int(t * 1e9))
    return out


def should_restart(policy: str, kind: str, exit: ContainerExit) -> bool:
    """Whether an exited container is started again (sidecars always; init containers unless Never)."""
    if kind == "sidecar":
        return True
    policy = policy or "Always"
    if kind == "init":
        return policy != "Never" and exit.exit_code != 0
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit.exit_code != 0
    return False


def backoff_delay(restart_count: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> float:
    """Delay before restart number restart_count+1: 0 for the first restart, then 10 s doubling to 5 min."""
    if restart_count <= 0:
        return 0.0
    return float(min(cap, base * (2 ** (restart_count - 1))))


def qos_class(pod: pod_pb2.Pod) -> str:
    """Guaranteed (every container has equal cpu+memory requests and limits), BestEffort (none), else Burstable."""
    containers = list(pod.spec.init_containers) + list(pod.spec.containers)
    any_set = False
    guaranteed = True
    for c in containers:
        req, lim = c.resources.requests, c.resources.limits
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim:
                guaranteed = False
                continue
            if r in req and parse_quantity(req[r].value) != parse_quantity(lim[r].value):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def init_done(pod: pod_pb2.Pod, st: PodState) -> bool:
    """All regular init containers succeeded and all sidecars are started."""
    for c in pod.spec.init_containers:
        cs = st.containers.get(c.name)
        if cs is None:
            return False
        if cs.kind == "sidecar":
            if not (cs.running and cs.started):
                return False
        elif not (cs.exit is not None and cs.exit.exit_code == 0):
            return False
    return True


def phase(pod: pod_pb2.Pod, st: PodState) -> str:
    policy = pod.spec.restart_policy or "Always"
    for c in pod.spec.init_containers:
        cs = st.containers.get(c.name)
        if cs is not None and cs.kind == "init" and cs.exit is not None and cs.exit.exit_code != 0:
            if not should_restart(policy, "init", cs.exit):
                return "Failed"
    if not init_done(pod, st):
        return "Pending"
    running = stopped = waiting = failed = 0
    for c in pod.spec.containers:
        cs = st.containers.get(c.name)
        if cs is None or cs.record is None:
            if cs is not None and cs.last_exit is not None:
                stopped += 1
                failed += cs.last_exit.exit_code != 0
            else:
                waiting += 1
        elif cs.exit is None or cs.spec_changed:
            running += 1
        else:
            stopped += 1
            failed += cs.exit.exit_code != 0
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if policy == "Always":
            return "Running"
        if policy == "OnFailure":
            return "Running" if failed else "Succeeded"
        return "Failed" if failed else "Succeeded"
    return "Pending"


def _terminated(e: ContainerExit, started_at: float, cid: str) -> pod_pb2.ContainerStateTerminated:
    return pod_pb2.ContainerStateTerminated(
        exit_code=e.exit_code,
        signal=e.signal,
        reason=e.reason,
        message=e.message,
        started_at=ts(started_at),
        finished_at=ts(e.finished_at),
        container_id=cid,
    )


def container_status(
    c: pod_pb2.Container, cs: ContainerState | None, policy: str, default_waiting: str, now: float
) -> pod_pb2.ContainerStatus:
    out = pod_pb2.ContainerStatus(name=c.name, image=c.image, image_id=c.image)
    if cs is None:
        out.state.waiting.reason = default_waiting
        out.started = False
        return out
    out.restart_count = cs.restart_count
    if cs.last_exit is not None and cs.last_record is not None:
        out.last_state.terminated.CopyFrom(_terminated(cs.last_exit, cs.last_record.started_at, cs.last_record.id))
    if cs.record is not None:
        out.container_id = cs.record.id
    if cs.record is not None and cs.exit is None:
        out.state.running.started_at.CopyFrom(ts(cs.record.started_at))
        out.ready = cs.ready
        out.started = cs.started
    elif cs.record is not None and cs.exit is not None:
        out.started = False
        if should_restart(policy, cs.kind, cs.exit):
            out.state.waiting.reason = cs.waiting_reason or ("CrashLoopBackOff" if cs.backoff_until > now else "")
            out.state.waiting.message = cs.waiting_message or (
                f"back-off restarting failed container {c.name}" if cs.backoff_until > now else ""
            )
            out.last_state.terminated.CopyFrom(_terminated(cs.exit, cs.record.started_at, cs.record.id))
        else:
            out.state.terminated.CopyFrom(_terminated(cs.exit, cs.record.started_at, cs.record.id))
    else:
        out.started = False
        out.state.waiting.reason = cs.waiting_reason or default_waiting
        out.state.waiting.message = cs.waiting_message
    return out


def _condition(
    ctype: str, ok: bool, previous: pod_pb2.PodStatus, now: float, reason: str = "", message: str = ""
) -> meta_pb2.Condition:
    status = "True" if ok else "False"
    cond = meta_pb2.Condition(
        type=ctype, status=status, reason=reason if not ok else "", message=message if not ok else ""
    )
    for p in previous.conditions:
        if p.type == ctype and p.status == status and p.HasField("last_transition_time"):
            cond.last_transition_time.CopyFrom(p.last_transition_time)
            break
    else:
        cond.last_transition_time.CopyFrom(ts(now))
    return cond


def build_status(
    pod: pod_pb2.Pod, st: PodState, host_ip: str, now: float, message: str = "", reason: str = ""
) -> pod_pb2.PodStatus:
    """The status the agent reports for the pod (timestamps stable between calls unless something changed)."""
    policy = pod.spec.restart_policy or "Always"
    prev = pod.status
    out = pod_pb2.PodStatus(host_ip=host_ip, qos_class=qos_class(pod), nominated_node_name=prev.nominated_node_name)
    out.phase = "Failed" if reason in FAILING_REASONS else phase(pod, st)
    out.reason = reason
    if st.pod_ip:
        out.pod_ip = st.pod_ip
        out.pod_ips.add(ip=st.pod_ip)
    if st.start_time:
        out.start_time.CopyFrom(ts(st.start_time))
    initialized = init_done(pod, st)
    for c in pod.spec.init_containers:
        out.init_container_statuses.append(
            container_status(c, st.containers.get(c.name), policy, "PodInitializing", now)
        )
    for c in pod.spec.containers:
        default = "ContainerCreating" if initialized else "PodInitializing"
        out.container_statuses.append(container_status(c, st.containers.get(c.name), policy, default, now))
    if message:
        out.message = message
    terminal = out.phase in ("Succeeded", "Failed")
    ready_all = bool(pod.spec.containers) and all(s.ready for s in out.container_statuses) and not terminal
    sidecars_ready = all(
        s.ready
        for c, s in zip(pod.spec.init_containers, out.init_container_statuses, strict=True)
        if c.restart_policy == "Always"
    )
    ready_all = ready_all and sidecars_ready
    not_ready = [s.name for s in out.container_statuses if not s.ready]
    msg = f"containers with unready status: [{' '.join(not_ready)}]" if not_ready else ""
    reason = "PodCompleted" if terminal else "ContainersNotReady"
    out.conditions.append(_condition("PodScheduled", True, prev, now))
    out.conditions.append(_condition("Initialized", initialized or terminal, prev, now, "ContainersNotInitialized", ""))
    out.conditions.append(_condition("ContainersReady", ready_all, prev, now, reason, msg))
    out.conditions.append(_condition("Ready", ready_all, prev, now, reason, msg))
    return out


def status_key(s: pod_pb2.PodStatus) -> bytes:
    """A comparable form of a status (to skip writes that change nothing)."""
    return s.SerializeToString(deterministic=True)
