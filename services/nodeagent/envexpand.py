"""Container environment like Kubernetes: $(VAR) expansion ($$ escapes), fieldRef values, defaults."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pinnace.api import pod_pb2

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' expansion: $(NAME) -> value when NAME is defined (else left as written); $$ -> $."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "$" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                j = text.find(")", i + 2)
                if j >= 0:
                    name = text[i + 2 : j]
                    if name in env:
                        out.append(env[name])
                    else:
                        out.append(text[i : j + 1])
                    i = j + 1
                    continue
        out.append(c)
        i += 1
    return "".join(out)


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_ref(pod: pod_pb2.Pod, path: str, host_ip: str = "") -> str:
    """The value of a downward-API fieldRef path."""
    m = _SUBSCRIPT.match(path)
    if m:
        src = pod.metadata.labels if m.group(1) == "labels" else pod.metadata.annotations
        return src.get(m.group(2), "")
    simple = {
        "metadata.name": pod.metadata.name,
        "metadata.namespace": pod.metadata.namespace,
        "metadata.uid": pod.metadata.uid,
        "spec.nodeName": pod.spec.node_name,
        "spec.serviceAccountName": pod.spec.service_account_name,
        "status.podIP": pod.status.pod_ip,
        "status.hostIP": host_ip or pod.status.host_ip,
    }
    return simple.get(path, "")


def container_env(pod: pod_pb2.Pod, c: pod_pb2.Container, host_ip: str = "") -> dict[str, str]:
    """The full environment of a container: defaults, then its env list in order with expansion."""
    env: dict[str, str] = {
        "PATH": DEFAULT_PATH,
        "HOSTNAME": pod.spec.hostname or pod.metadata.name,
        "HOME": "/root",
    }
    if c.tty:
        env["TERM"] = "xterm"
    for e in c.env:
        if e.HasField("value_from") and e.value_from.HasField("field_ref"):
            env[e.name] = field_ref(pod, e.value_from.field_ref.field_path, host_ip)
        else:
            env[e.name] = expand(e.value, env)
    return env


def container_argv(c: pod_pb2.Container, env: Mapping[str, str]) -> list[str]:
    """command + args, each expanded against the environment; the host runtime needs a command."""
    return [expand(a, env) for a in c.command] + [expand(a, env) for a in c.args]
