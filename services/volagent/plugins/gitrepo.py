"""gitRepo: clone a repository at a revision into the volume before the containers start.

Like the kubelet: `git clone -- <repository> [<directory>]` inside the volume, then
`git checkout <revision>` and `git reset --hard`. The clone goes to a scratch directory that
is renamed into place when complete, so a half-done clone is never handed to a container and
a retried MountVolumes starts over cleanly.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from services.volagent.errors import VolumeError

CLONE_TIMEOUT = 300.0
_ENV = {
    "GIT_TERMINAL_PROMPT": "0",  # never wait for a password
    "GIT_ASKPASS": "/bin/false",
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=15",
    "GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh",  # no ext:: and friends
    "LC_ALL": "C",
}


def _git(args: list[str], cwd: str, timeout: float) -> tuple[int, str]:
    env = {**os.environ, **_ENV}
    try:
        # Never run hooks from what we clone (CVE-2024-10220-style attacks through a gitRepo volume).
        p = subprocess.run(
            ["git", "-c", "core.hooksPath=/dev/null", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout:.0f}s"
    except FileNotFoundError:
        return 127, "git is not installed on this node"
    lines = [ln.strip() for ln in (p.stderr + "\n" + p.stdout).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("Cloning into", "Note:", "HEAD is now"))]
    return p.returncode, "; ".join(lines)[:1000]


def check_directory(volume: str, directory: str) -> None:
    if os.path.isabs(directory) or ".." in directory.split("/"):
        raise VolumeError(
            f"gitRepo volume {volume}: directory {directory!r} must be relative and must not contain '..'"
        )


def setup(
    volume: str, path: str, repository: str, revision: str, directory: str, timeout: float = CLONE_TIMEOUT
) -> None:
    """Clone into path (idempotent: an existing path is a finished clone)."""
    if os.path.isdir(path):
        return
    if not repository:
        raise VolumeError(f"gitRepo volume {volume}: repository is empty")
    if repository.startswith("-"):
        raise VolumeError(f"gitRepo volume {volume}: repository {repository!r} must not start with '-'")
    check_directory(volume, directory)
    scratch = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.cloning")
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch, mode=0o777)
    try:
        args = ["clone", "--", repository]
        if directory:
            args.append(directory)
        rc, msg = _git(args, scratch, timeout)
        if rc != 0:
            raise VolumeError(f"gitRepo volume {volume}: cannot clone {repository}: {msg or f'git exit status {rc}'}")
        if revision:
            if directory == ".":
                repo_dir = scratch
            elif directory:
                repo_dir = os.path.join(scratch, directory)
            else:
                subdirs = [e.path for e in os.scandir(scratch) if e.is_dir()]
                if len(subdirs) != 1:
                    raise VolumeError(f"gitRepo volume {volume}: cannot find the clone of {repository}")
                repo_dir = subdirs[0]
            rc, top = _git(["rev-parse", "--show-toplevel"], repo_dir, timeout)
            if rc != 0 or os.path.realpath(top.split("; ")[-1]) != os.path.realpath(repo_dir):
                raise VolumeError(f"gitRepo volume {volume}: {repo_dir} is not the top of the cloned repository")
            rc, msg = _git(["checkout", revision], repo_dir, timeout)
            if rc != 0:
                raise VolumeError(
                    f"gitRepo volume {volume}: cannot check out revision {revision} of {repository}: {msg}"
                )
            rc, msg = _git(["reset", "--hard"], repo_dir, timeout)
            if rc != 0:
                raise VolumeError(f"gitRepo volume {volume}: git reset --hard failed: {msg}")
        os.chmod(scratch, 0o777)
        os.rename(scratch, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
