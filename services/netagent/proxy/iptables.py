"""Running iptables-restore/-save in this network namespace, with the backend the host uses.

Like kube-proxy, pick nft or legacy by what the system's `iptables` is, unless our rules already
live in the other one (override with mode="nft"|"legacy"). Jumps from built-in chains are
ensured with `iptables -C`/`-I` (the full sync writes them itself).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from services.netagent.proxy.rules import JUMPS, PREFIX


class IptablesError(Exception):
    pass


def _has_our_rules(mode: str) -> bool:
    binary = shutil.which(f"iptables-{mode}")
    if binary is None:
        return False
    try:
        proc = subprocess.run(
            [binary, "-w", "5", "-t", "nat", "-S", "PINNACE-SERVICES"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def detect_mode() -> str:
    """The system's iptables flavour, unless only the other one holds our rules (kube-proxy's rule:
    follow where the rules already are, so a restart never splits them across two backends)."""
    try:
        out = subprocess.run(["iptables", "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    system = "nft" if "nf_tables" in out else "legacy"
    other = "legacy" if system == "nft" else "nft"
    if not _has_our_rules(system) and _has_our_rules(other):
        return other
    return system


@dataclass
class Iptables:
    mode: str = ""

    def __post_init__(self) -> None:
        if not self.mode:
            self.mode = detect_mode()
        suffix = "-nft" if self.mode == "nft" else "-legacy"
        self.iptables = self._binary("iptables" + suffix, "iptables")
        self.restore_bin = self._binary("iptables" + suffix + "-restore", "iptables-restore")
        self.save_bin = self._binary("iptables" + suffix + "-save", "iptables-save")

    @staticmethod
    def _binary(name: str, fallback: str) -> str:
        return shutil.which(name) or shutil.which(fallback) or fallback

    def _run(self, argv: list[str], input: str | None = None, timeout: float = 120) -> str:
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise IptablesError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip()[:2000]}")
        return proc.stdout

    def restore(self, payload: str, noflush: bool = True) -> None:
        """Apply a nat-table payload atomically; with noflush, undeclared chains are left alone."""
        argv = [self.restore_bin, "-w", "5", *(["--noflush"] if noflush else [])]
        self._run(argv, input=payload, timeout=600)

    def save_nat(self) -> str:
        return self._run([self.save_bin, "-t", "nat"])

    def our_chains(self) -> list[str]:
        return [line[1:].split()[0] for line in self.save_nat().splitlines() if line.startswith(":" + PREFIX)]

    def chain_rules(self, chain: str) -> list[str]:
        out = self._run([self.iptables, "-w", "5", "-t", "nat", "-S", chain])
        return [line for line in out.splitlines() if line.startswith("-A ")]

    def ensure_jumps(self) -> None:
        for parent, target, comment in JUMPS:
            spec = ["-m", "comment", "--comment", comment, "-j", target]
            try:
                self._run([self.iptables, "-w", "5", "-t", "nat", "-N", target])
            except IptablesError:
                pass  # exists
            check = subprocess.run(
                [self.iptables, "-w", "5", "-t", "nat", "-C", parent, *spec], capture_output=True, timeout=30
            )
            if check.returncode != 0:
                self._run([self.iptables, "-w", "5", "-t", "nat", "-I", parent, "1", *spec])

    def remove_all(self) -> None:
        """Uninstall: the jumps from built-in chains, then every PINNACE-* chain."""
        for parent, target, comment in JUMPS:
            spec = ["-m", "comment", "--comment", comment, "-j", target]
            while (
                subprocess.run(
                    [self.iptables, "-w", "5", "-t", "nat", "-D", parent, *spec], capture_output=True, timeout=30
                ).returncode
                == 0
            ):
                pass
        chains = self.our_chains()
        if chains:
            lines = ["*nat", *(f":{c} - [0:0]" for c in chains), *(f"-X {c}" for c in chains), "COMMIT", ""]
            self.restore("\n".join(lines))
