"""Issue a cluster's certificates into a directory: `python -m pinnace.cluster.pki DIR --nodes a,b`.

Used by the compose demo's one-shot `pki` service; `pinnace up` does the same in-process.
"""

from __future__ import annotations

import argparse
import sys

from pinnace.common import tls

CONTROL_PLANE = ("store", "scheduler", "controllers", "admin")


def issue_all(directory: str, nodes: list[str]) -> None:
    d = tls.ensure_cluster_pki(directory)
    for name in CONTROL_PLANE:
        tls.issue(d, name, name)
    for node in nodes:
        tls.issue(d, f"node-{node}", f"node:{node}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory")
    parser.add_argument("--nodes", default="", help="comma-separated node names")
    ns = parser.parse_args(argv)
    issue_all(ns.directory, [n for n in ns.nodes.split(",") if n])
    print(f"certificates in {ns.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
