"""The Endpoints controller: for each Service with a selector, an Endpoints object of the same name with
ready pod IPs (addresses) and the rest (notReadyAddresses), ports resolved per pod (named targetPort ->
that pod's containerPort), grouped into subsets by identical port lists. Headless services too."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from pinnace.api import pod_pb2, service_pb2
from pinnace.client import errors
from pinnace.common.selectors import selector_from_map
from services.controllers.base import Controller
from services.controllers.podutil import is_ready

PortKey = tuple[tuple[str, int, str, str], ...]


def _key(ns: str, name: str) -> str:
    return f"{ns}/{name}"


def resolve_port(port: service_pb2.ServicePort, pod: pod_pb2.Pod) -> int | None:
    """The pod port a service port sends to; None when a named targetPort is not on this pod."""
    which = port.target_port.WhichOneof("value")
    if which == "int_val" and port.target_port.int_val:
        return port.target_port.int_val
    if which == "str_val" and port.target_port.str_val:
        name = port.target_port.str_val
        if name.isdigit():
            return int(name)
        proto = port.protocol or "TCP"
        for c in pod.spec.containers:
            for cp in c.ports:
                if cp.name == name and (cp.protocol or "TCP") == proto:
                    return cp.container_port
        return None
    return port.port


def build_subsets(svc: service_pb2.Service, pods: Iterable[pod_pb2.Pod]) -> list[service_pb2.EndpointSubset]:
    """The subsets for a service over the candidate pods (deterministic order)."""
    groups: dict[PortKey, tuple[list[service_pb2.EndpointAddress], list[service_pb2.EndpointAddress]]] = {}
    headless = svc.spec.cluster_ip == "None"
    publish = svc.spec.publish_not_ready_addresses
    for pod in pods:
        if not pod.status.pod_ip or pod.status.phase in ("Succeeded", "Failed"):
            continue
        if pod.metadata.HasField("deletion_timestamp") and not publish:
            continue
        ports: list[tuple[str, int, str, str]] = []
        for sp in svc.spec.ports:
            target = resolve_port(sp, pod)
            if target is not None:
                ports.append((sp.name, target, sp.protocol or "TCP", sp.app_protocol))
        if svc.spec.ports and not ports:
            continue
        addr = service_pb2.EndpointAddress(ip=pod.status.pod_ip)
        if pod.spec.node_name:
            addr.node_name = pod.spec.node_name
        if headless and pod.spec.hostname and pod.spec.subdomain == svc.metadata.name:
            addr.hostname = pod.spec.hostname
        ref = addr.target_ref
        ref.kind, ref.namespace, ref.name, ref.uid = "Pod", pod.metadata.namespace, pod.metadata.name, pod.metadata.uid
        ready_list, not_ready = groups.setdefault(tuple(sorted(ports)), ([], []))
        (ready_list if (is_ready(pod) or publish) else not_ready).append(addr)
    subsets = []
    for ports_key in sorted(groups):
        ready_list, not_ready = groups[ports_key]
        s = service_pb2.EndpointSubset()
        s.addresses.extend(sorted(ready_list, key=lambda a: a.ip))
        s.not_ready_addresses.extend(sorted(not_ready, key=lambda a: a.ip))
        for name, port, proto, app in ports_key:
            s.ports.add(name=name, port=port, protocol=proto, app_protocol=app)
        subsets.append(s)
    return subsets


class EndpointsController(Controller):
    name = "endpoints"
    workers = 4

    def setup(self) -> None:
        self.services = self.informers.get(service_pb2.Service)
        self.pods = self.informers.get(pod_pb2.Pod)
        self.endpoints = self.informers.get(service_pb2.Endpoints)
        self.services.add_handler(on_add=self._svc, on_update=lambda _o, n: self._svc(n), on_delete=self._svc)
        self.pods.add_handler(on_add=self._pod, on_update=self._pod_updated, on_delete=self._pod)
        self.endpoints.add_handler(on_delete=self._svc, on_update=lambda _o, n: self._svc(n))

    def keys(self) -> Iterable[Any]:
        return self.services.keys()

    def _svc(self, obj: Any) -> None:
        self.enqueue(_key(obj.metadata.namespace, obj.metadata.name))

    def _services_for(self, pod: pod_pb2.Pod) -> list[str]:
        out = []
        for svc in self.services.list(namespace=pod.metadata.namespace):
            if svc.spec.selector and selector_from_map(svc.spec.selector).matches(pod.metadata.labels):
                out.append(_key(svc.metadata.namespace, svc.metadata.name))
        return out

    def _pod(self, pod: pod_pb2.Pod) -> None:
        for k in self._services_for(pod):
            self.enqueue(k)

    def _pod_updated(self, old: pod_pb2.Pod, new: pod_pb2.Pod) -> None:
        if (
            old.status.pod_ip == new.status.pod_ip
            and is_ready(old) == is_ready(new)
            and old.metadata.labels == new.metadata.labels
            and old.metadata.HasField("deletion_timestamp") == new.metadata.HasField("deletion_timestamp")
            and old.status.phase == new.status.phase
            and old.spec.node_name == new.spec.node_name
        ):
            return
        keys = set(self._services_for(new))
        if old.metadata.labels != new.metadata.labels:
            keys |= set(self._services_for(old))
        for k in keys:
            self.enqueue(k)

    async def reconcile(self, key: str) -> float | None:
        ns, _, name = key.partition("/")
        svc = self.services.get(key)
        current = self.endpoints.get(key)
        if svc is None:
            if current is not None:
                with contextlib.suppress(errors.NotFound):
                    await self.client.delete(service_pb2.Endpoints, name, ns)
            return None
        if not svc.spec.selector:
            return None  # endpoints of selector-less services are managed by their users
        sel = selector_from_map(svc.spec.selector)
        pods = [p for p in self.pods.list(namespace=ns) if sel.matches(p.metadata.labels)]
        subsets = build_subsets(svc, pods)
        if current is not None:
            if list(current.subsets) == subsets and dict(current.metadata.labels) == dict(svc.metadata.labels):
                return None
            ep = service_pb2.Endpoints()
            ep.CopyFrom(current)
            del ep.subsets[:]
            ep.subsets.extend(subsets)
            ep.metadata.labels.clear()
            ep.metadata.labels.update(svc.metadata.labels)
            await self.client.update(ep)
            return None
        ep = service_pb2.Endpoints()
        ep.metadata.name = name
        ep.metadata.namespace = ns
        ep.metadata.labels.update(svc.metadata.labels)
        ep.subsets.extend(subsets)
        try:
            await self.client.create(ep)
        except errors.AlreadyExists:
            raise errors.Conflict(f"endpoints {key} appeared meanwhile; retrying") from None
        return None
