"""Semantic checks for a pod spec: containers, ports, env, resources, probes, volumes, scheduling."""

from __future__ import annotations

from pinnace.api import meta_pb2, pod_pb2
from pinnace.common.quantity import QuantityError, parse_quantity
from pinnace.manifest import names
from pinnace.manifest.checks import Problems, has

PROTOCOLS = ("TCP", "UDP", "SCTP")
_RESTART = ("Always", "OnFailure", "Never")
_DNS = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
_PULL = ("Always", "IfNotPresent", "Never")
_HOSTPATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice")
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_NODE_OPS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


def int_or_string_port(p: Problems, path: str, port: meta_pb2.IntOrString, *, required: bool = True) -> None:
    which = port.WhichOneof("value")
    if which is None:
        if required:
            p.add(path, "required: a port number or the name of a container port")
    elif which == "int_val":
        p.port(path, port.int_val)
    else:
        p.check(path, names.port_name(port.str_val))


def _handler(p: Problems, path: str, h: pod_pb2.Probe | pod_pb2.LifecycleHandler) -> None:
    set_ = [n for n in ("exec", "httpGet", "tcpSocket", "sleep") if _has(h, n)]
    if len(set_) != 1:
        what = "none" if not set_ else " and ".join(set_)
        kinds = "exec, httpGet or tcpSocket" + (", sleep" if isinstance(h, pod_pb2.LifecycleHandler) else "")
        p.add(path, f"must have exactly one handler ({kinds}), has {what}")
    if h.HasField("exec") and not h.exec.command:
        p.add(f"{path}.exec.command", "required: the command to run")
    if h.HasField("http_get"):
        int_or_string_port(p, f"{path}.httpGet.port", h.http_get.port)
        p.enum(f"{path}.httpGet.scheme", h.http_get.scheme, ("HTTP", "HTTPS"))
        for i, hdr in enumerate(h.http_get.http_headers):
            p.required(f"{path}.httpGet.httpHeaders[{i}].name", hdr.name)
    if h.HasField("tcp_socket"):
        int_or_string_port(p, f"{path}.tcpSocket.port", h.tcp_socket.port)


def _has(msg: pod_pb2.Probe | pod_pb2.LifecycleHandler, json: str) -> bool:
    name = {"exec": "exec", "httpGet": "http_get", "tcpSocket": "tcp_socket", "sleep": "sleep"}[json]
    return name in msg.DESCRIPTOR.fields_by_name and has(msg, name)


def _probe(p: Problems, path: str, probe: pod_pb2.Probe, *, liveness: bool) -> None:
    _handler(p, path, probe)
    p.at_least(f"{path}.initialDelaySeconds", probe.initial_delay_seconds, 0)
    for name, json in (
        ("timeout_seconds", "timeoutSeconds"),
        ("period_seconds", "periodSeconds"),
        ("success_threshold", "successThreshold"),
        ("failure_threshold", "failureThreshold"),
    ):
        if has(probe, name):
            p.at_least(f"{path}.{json}", getattr(probe, name), 1)
    if liveness and probe.HasField("success_threshold") and probe.success_threshold != 1:
        p.add(f"{path}.successThreshold", "must be 1 for liveness and startup probes")


def _resources(p: Problems, path: str, res: pod_pb2.ResourceRequirements) -> None:
    for part, values in (("requests", res.requests), ("limits", res.limits)):
        for name, q in values.items():
            p.quantity(f"{path}.{part}[{name}]", q.value)
    for name, req in res.requests.items():
        if name in res.limits:
            try:
                over = parse_quantity(req.value) > parse_quantity(res.limits[name].value)
            except QuantityError:
                continue
            if over:
                p.add(
                    f"{path}.requests[{name}]",
                    f"request {req.value} is more than the limit {res.limits[name].value}",
                )


def _container(p: Problems, path: str, c: pod_pb2.Container, volumes: set[str], *, init: bool) -> None:
    if p.required(f"{path}.name", c.name):
        p.check(f"{path}.name", names.dns1123_label(c.name))
    p.required(f"{path}.image", c.image, "the container image, e.g. nginx:1.27")
    p.enum(f"{path}.imagePullPolicy", c.image_pull_policy, _PULL)
    port_names: set[str] = set()
    for i, port in enumerate(c.ports):
        ppath = f"{path}.ports[{i}]"
        p.port(f"{ppath}.containerPort", port.container_port)
        p.port(f"{ppath}.hostPort", port.host_port, zero_ok=True)
        p.enum(f"{ppath}.protocol", port.protocol, PROTOCOLS)
        if port.host_ip:
            p.ip(f"{ppath}.hostIP", port.host_ip)
        if port.name:
            p.check(f"{ppath}.name", names.port_name(port.name))
            if port.name in port_names:
                p.add(f"{ppath}.name", f"duplicate port name {port.name!r}")
            port_names.add(port.name)
    for i, env in enumerate(c.env):
        epath = f"{path}.env[{i}]"
        if p.required(f"{epath}.name", env.name):
            p.check(f"{epath}.name", names.env_name(env.name))
        if env.HasField("value_from"):
            if env.value:
                p.add(f"{epath}.valueFrom", "may not be set together with value")
            if not env.value_from.HasField("field_ref"):
                p.add(f"{epath}.valueFrom", "required: fieldRef (the only source Pinnace supports)")
            else:
                p.required(f"{epath}.valueFrom.fieldRef.fieldPath", env.value_from.field_ref.field_path)
    _resources(p, f"{path}.resources", c.resources)
    mount_paths: set[str] = set()
    for i, m in enumerate(c.volume_mounts):
        mpath = f"{path}.volumeMounts[{i}]"
        if p.required(f"{mpath}.name", m.name) and m.name not in volumes:
            known = ", ".join(sorted(volumes)) or "none"
            p.add(f"{mpath}.name", f"volume {m.name!r} is not declared in the pod's volumes (declared: {known})")
        if p.required(f"{mpath}.mountPath", m.mount_path):
            if m.mount_path in mount_paths:
                p.add(f"{mpath}.mountPath", f"{m.mount_path!r} is already mounted in this container")
            mount_paths.add(m.mount_path)
        if ".." in m.sub_path.split("/") or m.sub_path.startswith("/"):
            p.add(f"{mpath}.subPath", "must be a relative path without '..'")
    for name, json, liveness in (
        ("liveness_probe", "livenessProbe", True),
        ("readiness_probe", "readinessProbe", False),
        ("startup_probe", "startupProbe", True),
    ):
        if has(c, name):
            _probe(p, f"{path}.{json}", getattr(c, name), liveness=liveness)
    for name, json in (("post_start", "postStart"), ("pre_stop", "preStop")):
        if has(c.lifecycle, name):
            _handler(p, f"{path}.lifecycle.{json}", getattr(c.lifecycle, name))
    if c.restart_policy:
        if init:
            p.enum(f"{path}.restartPolicy", c.restart_policy, ("Always",))
        else:
            p.add(f"{path}.restartPolicy", "only init containers may set a restartPolicy (Always, for sidecars)")


def _volume(p: Problems, path: str, v: pod_pb2.Volume) -> None:
    if p.required(f"{path}.name", v.name):
        p.check(f"{path}.name", names.dns1123_label(v.name))
    sources = [
        json
        for name, json in (
            ("host_path", "hostPath"),
            ("empty_dir", "emptyDir"),
            ("git_repo", "gitRepo"),
            ("nfs", "nfs"),
            ("persistent_volume_claim", "persistentVolumeClaim"),
        )
        if has(v, name)
    ]
    if len(sources) != 1:
        what = "none" if not sources else " and ".join(sources)
        p.add(
            path, f"must have exactly one source (emptyDir, hostPath, gitRepo, nfs, persistentVolumeClaim), has {what}"
        )
    if v.HasField("host_path"):
        host_path(p, f"{path}.hostPath", v.host_path)
    if v.HasField("empty_dir"):
        p.enum(f"{path}.emptyDir.medium", v.empty_dir.medium, ("Memory",))
        if v.empty_dir.HasField("size_limit"):
            p.quantity(f"{path}.emptyDir.sizeLimit", v.empty_dir.size_limit.value)
    if v.HasField("git_repo"):
        p.required(f"{path}.gitRepo.repository", v.git_repo.repository)
        d = v.git_repo.directory
        if ".." in d.split("/") or d.startswith("/"):
            p.add(f"{path}.gitRepo.directory", "must be a relative path without '..'")
    if v.HasField("nfs"):
        nfs(p, f"{path}.nfs", v.nfs)
    if v.HasField("persistent_volume_claim"):
        p.required(f"{path}.persistentVolumeClaim.claimName", v.persistent_volume_claim.claim_name)


def host_path(p: Problems, path: str, hp: pod_pb2.HostPathVolumeSource) -> None:
    p.required(f"{path}.path", hp.path, "the path on the node")
    p.enum(f"{path}.type", hp.type, _HOSTPATH_TYPES)


def nfs(p: Problems, path: str, src: pod_pb2.NFSVolumeSource) -> None:
    p.required(f"{path}.server", src.server, "the NFS server's host name or address")
    if p.required(f"{path}.path", src.path, "the exported path") and not src.path.startswith("/"):
        p.add(f"{path}.path", f"{src.path!r} must be an absolute path")


def node_selector(p: Problems, path: str, sel: pod_pb2.NodeSelector) -> None:
    if not sel.node_selector_terms:
        p.add(f"{path}.nodeSelectorTerms", "required: at least one term")
    for i, term in enumerate(sel.node_selector_terms):
        node_selector_term(p, f"{path}.nodeSelectorTerms[{i}]", term)


def node_selector_term(p: Problems, path: str, term: pod_pb2.NodeSelectorTerm) -> None:
    for part, reqs in (("matchExpressions", term.match_expressions), ("matchFields", term.match_fields)):
        for i, r in enumerate(reqs):
            rpath = f"{path}.{part}[{i}]"
            p.required(f"{rpath}.key", r.key)
            p.enum(f"{rpath}.operator", r.operator, _NODE_OPS, empty_ok=False)
            if r.operator in ("In", "NotIn") and not r.values:
                p.add(f"{rpath}.values", f"must be non-empty when operator is {r.operator}")
            elif r.operator in ("Exists", "DoesNotExist") and r.values:
                p.add(f"{rpath}.values", f"must be empty when operator is {r.operator}")
            elif r.operator in ("Gt", "Lt") and (len(r.values) != 1 or not r.values[0].lstrip("-").isdigit()):
                p.add(f"{rpath}.values", f"must be a single whole number when operator is {r.operator}")


def _pod_affinity_term(p: Problems, path: str, term: pod_pb2.PodAffinityTerm) -> None:
    p.required(f"{path}.topologyKey", term.topology_key, "a node label key such as kubernetes.io/hostname")
    p.label_selector(f"{path}.labelSelector", term.label_selector)


def _affinity(p: Problems, path: str, a: pod_pb2.Affinity) -> None:
    na = a.node_affinity
    if na.HasField("required_during_scheduling_ignored_during_execution"):
        node_selector(
            p,
            f"{path}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution",
            na.required_during_scheduling_ignored_during_execution,
        )
    for i, pref in enumerate(na.preferred_during_scheduling_ignored_during_execution):
        ppath = f"{path}.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
        _weight(p, f"{ppath}.weight", pref.weight)
        node_selector_term(p, f"{ppath}.preference", pref.preference)
    for name, pa in (("podAffinity", a.pod_affinity), ("podAntiAffinity", a.pod_anti_affinity)):
        for i, term in enumerate(pa.required_during_scheduling_ignored_during_execution):
            _pod_affinity_term(p, f"{path}.{name}.requiredDuringSchedulingIgnoredDuringExecution[{i}]", term)
        for i, w in enumerate(pa.preferred_during_scheduling_ignored_during_execution):
            wpath = f"{path}.{name}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            _weight(p, f"{wpath}.weight", w.weight)
            _pod_affinity_term(p, f"{wpath}.podAffinityTerm", w.pod_affinity_term)


def _weight(p: Problems, path: str, weight: int) -> None:
    if not 1 <= weight <= 100:
        p.add(path, f"{weight} is not a valid weight: must be between 1 and 100")


def _toleration(p: Problems, path: str, t: pod_pb2.Toleration) -> None:
    p.enum(f"{path}.operator", t.operator, ("Equal", "Exists", "Gt", "Lt"))
    if t.key:
        p.check(f"{path}.key", names.qualified_name(t.key))
    elif t.operator != "Exists":
        p.add(f"{path}.operator", "must be Exists when key is empty (tolerate everything)")
    if t.operator == "Exists" and t.value:
        p.add(f"{path}.value", "must be empty when operator is Exists")
    if t.operator in ("Gt", "Lt") and not t.value.lstrip("-").isdigit():
        p.add(f"{path}.value", f"must be a whole number when operator is {t.operator}")
    p.enum(f"{path}.effect", t.effect, _EFFECTS)
    if t.HasField("toleration_seconds") and t.effect != "NoExecute":
        p.add(f"{path}.effect", "must be NoExecute when tolerationSeconds is set")


def validate_pod_spec(p: Problems, path: str, spec: pod_pb2.PodSpec, *, template: bool = False) -> None:
    volumes: set[str] = set()
    for i, v in enumerate(spec.volumes):
        vpath = f"{path}.volumes[{i}]"
        _volume(p, vpath, v)
        if v.name in volumes:
            p.add(f"{vpath}.name", f"duplicate volume name {v.name!r}")
        volumes.add(v.name)
    if not spec.containers:
        p.add(f"{path}.containers", "required: at least one container")
    seen: set[str] = set()
    for part, containers, init in (
        ("initContainers", spec.init_containers, True),
        ("containers", spec.containers, False),
    ):
        for i, c in enumerate(containers):
            cpath = f"{path}.{part}[{i}]"
            _container(p, cpath, c, volumes, init=init)
            if c.name and c.name in seen:
                p.add(f"{cpath}.name", f"duplicate container name {c.name!r}")
            seen.add(c.name)
    p.enum(f"{path}.restartPolicy", spec.restart_policy, _RESTART)
    if template and spec.restart_policy not in ("", "Always"):
        p.add(f"{path}.restartPolicy", "must be Always in a Deployment's or ReplicaSet's pod template")
    p.enum(f"{path}.dnsPolicy", spec.dns_policy, _DNS)
    if spec.dns_policy == "None" and not spec.dns_config.nameservers:
        p.add(f"{path}.dnsConfig.nameservers", "required when dnsPolicy is None")
    for i, ns in enumerate(spec.dns_config.nameservers):
        p.ip(f"{path}.dnsConfig.nameservers[{i}]", ns)
    p.labels(f"{path}.nodeSelector", spec.node_selector)
    if spec.node_name:
        p.check(f"{path}.nodeName", names.dns1123_subdomain(spec.node_name))
    if spec.hostname:
        p.check(f"{path}.hostname", names.dns1123_label(spec.hostname))
    if spec.subdomain:
        p.check(f"{path}.subdomain", names.dns1123_label(spec.subdomain))
    if spec.HasField("termination_grace_period_seconds"):
        p.at_least(f"{path}.terminationGracePeriodSeconds", spec.termination_grace_period_seconds, 0)
    if spec.HasField("active_deadline_seconds"):
        p.at_least(f"{path}.activeDeadlineSeconds", spec.active_deadline_seconds, 1)
    if spec.HasField("affinity"):
        _affinity(p, f"{path}.affinity", spec.affinity)
    for i, t in enumerate(spec.tolerations):
        _toleration(p, f"{path}.tolerations[{i}]", t)
    for i, tsc in enumerate(spec.topology_spread_constraints):
        tpath = f"{path}.topologySpreadConstraints[{i}]"
        p.at_least(f"{tpath}.maxSkew", tsc.max_skew, 1)
        p.required(f"{tpath}.topologyKey", tsc.topology_key)
        p.enum(
            f"{tpath}.whenUnsatisfiable", tsc.when_unsatisfiable, ("DoNotSchedule", "ScheduleAnyway"), empty_ok=False
        )
