"""`logs` and `exec`: talk to the node agent (NodeAgent gRPC service) of the node running the pod.

The agent's address is the node's InternalIP and ``status.daemonEndpoints.kubeletEndpoint.port``;
the connection uses the same TLS identity as the store connection. When the pod is not on a node
yet, or the node does not publish an endpoint, or the agent does not answer, the command says so.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import sys
import threading
from collections.abc import Iterator
from typing import Any

import grpc

from pinnace.api import node_pb2, nodelocal_pb2, nodelocal_pb2_grpc, pod_pb2
from pinnace.cli import output
from pinnace.cli.columns import node_address
from pinnace.cli.context import CLIError, client_from_args, common_parent, namespace_of, tls_from_args
from pinnace.client import errors


def _pod_and_agent(args: argparse.Namespace, pod_name: str) -> tuple[pod_pb2.Pod, str, str]:
    """(pod, container, agent address)."""
    ns = namespace_of(args)
    if pod_name.startswith(("pod/", "pods/", "po/")):
        pod_name = pod_name.split("/", 1)[1]
    with client_from_args(args) as client:
        try:
            pod = client.get(pod_pb2.Pod, pod_name, ns)
        except errors.NotFound:
            raise CLIError(f'pod "{pod_name}" not found in namespace {ns!r}', "`pinnace get pods`") from None
        names = [c.name for c in pod.spec.containers]
        container = args.container or ""
        if container and container not in names + [c.name for c in pod.spec.init_containers]:
            raise CLIError(f"container {container!r} is not in pod {pod_name}", f"containers: {', '.join(names)}")
        if not container:
            container = names[0] if names else ""
            if len(names) > 1:
                output.info(f'Defaulted container "{container}" out of: {", ".join(names)}')
        if not pod.spec.node_name:
            raise CLIError(
                f"pod {pod_name} is not scheduled to a node yet",
                f"`pinnace describe pod {pod_name}` shows why it is pending",
            )
        try:
            node = client.get(node_pb2.Node, pod.spec.node_name, "")
        except errors.NotFound:
            raise CLIError(
                f"node {pod.spec.node_name!r} of pod {pod_name} does not exist", "`pinnace get nodes`"
            ) from None
    ip = node_address(node)
    port = node.status.daemon_endpoints.kubelet_endpoint.port
    if ip == "<none>" or not port:
        raise CLIError(
            f"node {node.metadata.name} does not publish a node agent endpoint "
            "(status.addresses InternalIP and status.daemonEndpoints.kubeletEndpoint.port)",
            "is the node agent running on it? `pinnace get nodes -o wide`",
        )
    host = f"[{ip}]" if ":" in ip else ip
    return pod, container, f"{host}:{port}"


def _channel(args: argparse.Namespace, address: str) -> grpc.Channel:
    tls = tls_from_args(args)
    if tls is None:
        return grpc.insecure_channel(address)
    from pinnace.common import tls as tls_mod

    return tls_mod.secure_channel(address, tls)


def _agent_error(exc: grpc.RpcError, node: str, address: str) -> CLIError:
    code = exc.code() if callable(getattr(exc, "code", None)) else None
    details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return CLIError(
            f"cannot reach the node agent of node {node} at {address}: {details}",
            "is the node up? `pinnace get nodes`",
        )
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return CLIError(
            f"the node agent of node {node} at {address} does not serve logs/exec", "upgrade the node agent"
        )
    return CLIError(f"node agent of {node}: {details}", "")


def cmd_logs(args: argparse.Namespace) -> int:
    pod, container, address = _pod_and_agent(args, args.pod)
    req = nodelocal_pb2.LogsRequest(
        namespace=pod.metadata.namespace,
        pod=pod.metadata.name,
        container=container,
        follow=args.follow,
        tail_lines=args.tail,
        previous=args.previous,
        timestamps=args.timestamps,
    )
    with _channel(args, address) as ch:
        stub = nodelocal_pb2_grpc.NodeAgentStub(ch)
        out = sys.stdout.buffer
        try:
            for chunk in stub.Logs(req, timeout=None if args.follow else 60):
                out.write(chunk.data)
                out.flush()
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise CLIError(exc.details() or "logs not found", "has the container started?") from None
            raise _agent_error(exc, pod.spec.node_name, address) from None
        except KeyboardInterrupt:
            return 0
    return 0


def _stdin_reader(q: queue.Queue[nodelocal_pb2.ExecInput | None], stop: threading.Event) -> None:
    fd = sys.stdin.fileno()
    while not stop.is_set():
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            q.put(nodelocal_pb2.ExecInput(close_stdin=True))
            return
        q.put(nodelocal_pb2.ExecInput(stdin=data))


def cmd_exec(args: argparse.Namespace) -> int:
    command = list(args.command)
    if "--" in command:
        # argparse leaves options given after the pod name ("POD -c app -it -- cmd") in the remainder.
        idx = command.index("--")
        before, command = command[:idx], command[idx + 1 :]
        late = argparse.ArgumentParser(prog="pinnace exec", add_help=False)
        late.add_argument("-c", "--container")
        late.add_argument("-i", "--stdin", action="store_true")
        late.add_argument("-t", "--tty", action="store_true")
        late.add_argument("-n", "--namespace")
        try:
            extra = late.parse_args(before)
        except SystemExit:
            raise CLIError(
                f"cannot parse {' '.join(before)!r}", "pinnace exec POD [-c C] [-i] [-t] -- CMD", usage=True
            ) from None
        args.container = extra.container or args.container
        args.stdin = args.stdin or extra.stdin
        args.tty = args.tty or extra.tty
        args.namespace = extra.namespace or getattr(args, "namespace", None)
    if not command:
        raise CLIError("no command given", "pinnace exec POD -- COMMAND [ARGS...]", usage=True)
    pod, container, address = _pod_and_agent(args, args.pod)
    tty = args.tty and sys.stdin.isatty()
    q: queue.Queue[nodelocal_pb2.ExecInput | None] = queue.Queue()
    stop = threading.Event()
    start = nodelocal_pb2.ExecStart(
        namespace=pod.metadata.namespace,
        pod=pod.metadata.name,
        container=container,
        command=command,
        tty=tty,
        stdin=args.stdin,
    )
    q.put(nodelocal_pb2.ExecInput(start=start))
    if tty:
        size = os.get_terminal_size()
        q.put(nodelocal_pb2.ExecInput(resize=nodelocal_pb2.TerminalSize(rows=size.lines, cols=size.columns)))

    def requests() -> Iterator[nodelocal_pb2.ExecInput]:
        while True:
            item = q.get()
            if item is None:
                return
            yield item

    if args.stdin:
        threading.Thread(target=_stdin_reader, args=(q, stop), daemon=True).start()
    exit_code = 0
    restore: Any = None
    if tty:
        import termios
        import tty as tty_mod

        fd = sys.stdin.fileno()
        old = termios.tcgetattr(fd)
        tty_mod.setraw(fd)

        def restore_tty() -> None:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)

        restore = restore_tty
    try:
        with _channel(args, address) as ch:
            stub = nodelocal_pb2_grpc.NodeAgentStub(ch)
            try:
                for out in stub.Exec(requests()):
                    which = out.WhichOneof("output")
                    if which == "stdout":
                        sys.stdout.buffer.write(out.stdout)
                        sys.stdout.buffer.flush()
                    elif which == "stderr":
                        sys.stderr.buffer.write(out.stderr)
                        sys.stderr.buffer.flush()
                    elif which == "exit_code":
                        exit_code = out.exit_code
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    raise CLIError(exc.details() or "not found", "is the container running?") from None
                raise _agent_error(exc, pod.spec.node_name, address) from None
    finally:
        stop.set()
        q.put(None)
        if restore is not None:
            with contextlib.suppress(Exception):
                restore()
    return exit_code


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parent = common_parent()
    lg = subparsers.add_parser("logs", parents=[parent], help="print a container's logs (from its node agent)")
    lg.add_argument("pod")
    lg.add_argument("-c", "--container", default="")
    lg.add_argument("-f", "--follow", action="store_true")
    lg.add_argument("--tail", type=int, default=-1, help="last N lines; -1 = all")
    lg.add_argument("-p", "--previous", action="store_true", help="the previous, terminated container's logs")
    lg.add_argument("--timestamps", action="store_true")
    lg.set_defaults(func=cmd_logs)

    ex = subparsers.add_parser("exec", parents=[parent], help="run a command in a container (via its node agent)")
    ex.add_argument("pod")
    ex.add_argument("-c", "--container", default="")
    ex.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the command")
    ex.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    ex.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    ex.set_defaults(func=cmd_exec)
