"""Phase, container statuses, conditions, QoS and back-off from the agent's view of a pod."""

from __future__ import annotations

from pinnace.api import pod_pb2
from services.nodeagent import podstatus
from services.nodeagent.podstate import ContainerState, PodState
from services.nodeagent.runtimes.base import ContainerExit, ContainerRecord


def _pod(policy: str = "", names: tuple[str, ...] = ("a",)) -> pod_pb2.Pod:
    pod = pod_pb2.Pod()
    pod.metadata.name = "p"
    pod.metadata.uid = "u"
    pod.spec.restart_policy = policy
    for n in names:
        pod.spec.containers.add(name=n, image="img")
    return pod


def _running(name: str, kind: str = "app") -> ContainerState:
    return ContainerState(
        name=name, kind=kind, record=ContainerRecord(name=name, id=f"x://{name}", attempt=0, started_at=1.0)
    )


def _exited(name: str, code: int, kind: str = "app") -> ContainerState:
    cs = _running(name, kind)
    cs.exit = ContainerExit(code, 0, "Completed" if code == 0 else "Error", "", 2.0)
    return cs


def test_backoff_schedule() -> None:
    assert podstatus.backoff_delay(0) == 0
    assert podstatus.backoff_delay(1) == 10
    assert podstatus.backoff_delay(2) == 20
    assert podstatus.backoff_delay(10) == 300


def test_should_restart() -> None:
    ok, bad = ContainerExit(0), ContainerExit(1)
    assert podstatus.should_restart("Always", "app", ok)
    assert podstatus.should_restart("", "app", ok)
    assert not podstatus.should_restart("OnFailure", "app", ok)
    assert podstatus.should_restart("OnFailure", "app", bad)
    assert not podstatus.should_restart("Never", "app", bad)
    assert podstatus.should_restart("Never", "sidecar", ok)
    assert podstatus.should_restart("Always", "init", bad) and not podstatus.should_restart("Always", "init", ok)


def test_phases() -> None:
    pod = _pod("Never", ("a", "b"))
    st = PodState(uid="u", namespace="d", name="p")
    assert podstatus.phase(pod, st) == "Pending"
    st.containers = {"a": _running("a"), "b": _running("b")}
    assert podstatus.phase(pod, st) == "Running"
    st.containers = {"a": _exited("a", 0), "b": _exited("b", 0)}
    assert podstatus.phase(pod, st) == "Succeeded"
    st.containers = {"a": _exited("a", 0), "b": _exited("b", 3)}
    assert podstatus.phase(pod, st) == "Failed"
    pod.spec.restart_policy = "OnFailure"
    assert podstatus.phase(pod, st) == "Running"
    pod.spec.restart_policy = "Always"
    st.containers = {"a": _exited("a", 0), "b": _exited("b", 0)}
    assert podstatus.phase(pod, st) == "Running"


def test_init_containers_gate_and_fail() -> None:
    pod = _pod("Never")
    pod.spec.init_containers.add(name="i", image="img")
    st = PodState(uid="u", namespace="d", name="p", containers={"i": _running("i", "init")})
    assert podstatus.phase(pod, st) == "Pending"
    assert not podstatus.init_done(pod, st)
    st.containers["i"] = _exited("i", 1, "init")
    assert podstatus.phase(pod, st) == "Failed"
    st.containers["i"] = _exited("i", 0, "init")
    assert podstatus.init_done(pod, st)


def test_status_crashloop_and_conditions() -> None:
    pod = _pod("Always")
    cs = _exited("a", 2)
    cs.restart_count = 1
    cs.backoff_until = 1e12
    st = PodState(uid="u", namespace="d", name="p", pod_ip="10.244.0.5", start_time=1.0, containers={"a": cs})
    s = podstatus.build_status(pod, st, "192.168.1.1", now=100.0)
    c = s.container_statuses[0]
    assert c.state.waiting.reason == "CrashLoopBackOff"
    assert c.last_state.terminated.exit_code == 2 and c.restart_count == 1
    assert s.pod_ip == "10.244.0.5" and s.pod_ips[0].ip == "10.244.0.5" and s.host_ip == "192.168.1.1"
    conds = {x.type: x.status for x in s.conditions}
    assert conds == {"PodScheduled": "True", "Initialized": "True", "ContainersReady": "False", "Ready": "False"}
    # transition times are stable while statuses hold
    pod.status.CopyFrom(s)
    s2 = podstatus.build_status(pod, st, "192.168.1.1", now=200.0)
    assert podstatus.status_key(s) == podstatus.status_key(s2)


def test_ready_when_all_containers_ready() -> None:
    pod = _pod("Always", ("a", "b"))
    a, b = _running("a"), _running("b")
    a.ready = a.started = True
    st = PodState(uid="u", namespace="d", name="p", containers={"a": a, "b": b})
    s = podstatus.build_status(pod, st, "", now=1.0)
    assert {x.type: x.status for x in s.conditions}["Ready"] == "False"
    b.ready = b.started = True
    s = podstatus.build_status(pod, st, "", now=1.0)
    assert {x.type: x.status for x in s.conditions}["Ready"] == "True"


def test_qos() -> None:
    pod = _pod()
    assert podstatus.qos_class(pod) == "BestEffort"
    lim = pod.spec.containers[0].resources.limits
    lim["memory"].value = "64Mi"
    assert podstatus.qos_class(pod) == "Burstable"
    lim["cpu"].value = "500m"
    assert podstatus.qos_class(pod) == "Guaranteed"
    pod.spec.containers[0].resources.requests["cpu"].value = "100m"
    assert podstatus.qos_class(pod) == "Burstable"
