"""Volume plugins on their own: emptyDir dirs and usage, hostPath types, gitRepo with a real repo, nfs args."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from services.volagent.errors import VolumeError
from services.volagent.plugins import emptydir, gitrepo, hostpath, nfs


def test_emptydir_creates_world_writable_dir_idempotently(tmp_path: Path) -> None:
    p = str(tmp_path / "pods" / "u1" / "volumes" / "cache")
    emptydir.setup("cache", p, "", None)
    assert os.path.isdir(p) and (os.stat(p).st_mode & 0o777) == 0o777
    Path(p, "keep").write_text("x")
    emptydir.setup("cache", p, "", None)
    assert Path(p, "keep").read_text() == "x"


def test_emptydir_unknown_medium(tmp_path: Path) -> None:
    with pytest.raises(VolumeError, match="unknown medium 'HugePages'"):
        emptydir.setup("v", str(tmp_path / "v"), "HugePages", None)


def test_emptydir_usage_counts_blocks(tmp_path: Path) -> None:
    d = tmp_path / "v"
    d.mkdir()
    (d / "sub").mkdir()
    (d / "sub" / "big").write_bytes(os.urandom(3 * 1024 * 1024))
    os.link(d / "sub" / "big", d / "hardlink")  # counted once, like du
    used = emptydir.usage_bytes(str(d))
    assert 3 * 1024 * 1024 <= used < 4 * 1024 * 1024


def test_hostpath_types(tmp_path: Path) -> None:
    d, f = tmp_path / "d", tmp_path / "f"
    d.mkdir()
    f.write_text("x")
    assert hostpath.setup("v", str(d), "Directory") == str(d)
    assert hostpath.setup("v", str(f), "File") == str(f)
    assert hostpath.setup("v", str(tmp_path / "nothing"), "") == str(tmp_path / "nothing")
    assert (tmp_path / "nothing").is_dir()  # like Docker's bind mounts
    assert hostpath.setup("v", str(f), "") == str(f)  # no type: no checks
    with pytest.raises(VolumeError, match="is not a directory"):
        hostpath.setup("v", str(f), "Directory")
    with pytest.raises(VolumeError, match="is not a file"):
        hostpath.setup("v", str(d), "File")
    with pytest.raises(VolumeError, match="does not exist"):
        hostpath.setup("v", str(tmp_path / "missing"), "Directory")
    with pytest.raises(VolumeError, match="is not a UNIX socket"):
        hostpath.setup("v", str(f), "Socket")
    with pytest.raises(VolumeError, match="is not a character device"):
        hostpath.setup("v", str(f), "CharDevice")
    with pytest.raises(VolumeError, match="is not a block device"):
        hostpath.setup("v", str(f), "BlockDevice")
    with pytest.raises(VolumeError, match="unknown type 'Dir'"):
        hostpath.setup("v", str(d), "Dir")
    with pytest.raises(VolumeError, match="must be absolute"):
        hostpath.setup("v", "rel/path", "")


def test_hostpath_or_create(tmp_path: Path) -> None:
    nd = tmp_path / "a" / "b"
    assert hostpath.setup("v", str(nd), "DirectoryOrCreate") == str(nd) and nd.is_dir()
    nf = tmp_path / "c" / "file.txt"
    assert hostpath.setup("v", str(nf), "FileOrCreate") == str(nf) and nf.is_file()
    nf.write_text("kept")
    hostpath.setup("v", str(nf), "FileOrCreate")
    assert nf.read_text() == "kept"
    with pytest.raises(VolumeError, match="is not a directory"):
        hostpath.setup("v", str(nf), "DirectoryOrCreate")


def test_hostpath_socket_and_chardev(tmp_path: Path) -> None:
    sp = str(tmp_path / "s.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(sp)
    try:
        assert hostpath.setup("v", sp, "Socket") == sp
    finally:
        s.close()
    assert hostpath.setup("v", "/dev/null", "CharDevice") == "/dev/null"


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A real repository with two commits; returns (path, first sha, second sha)."""
    r = tmp_path / "src-repo"
    r.mkdir()
    _git(r, "init", "-q", "-b", "main")
    (r / "index.html").write_text("v1\n")
    _git(r, "add", ".")
    _git(r, "commit", "-q", "-m", "one")
    first = _git(r, "rev-parse", "HEAD")
    (r / "index.html").write_text("v2\n")
    _git(r, "commit", "-q", "-am", "two")
    second = _git(r, "rev-parse", "HEAD")
    return r, first, second


def test_gitrepo_clone_at_revision_into_dot(tmp_path: Path, repo: tuple[Path, str, str]) -> None:
    src, first, _ = repo
    vol = tmp_path / "vol"
    gitrepo.setup("git-volume", str(vol), str(src), first, ".")
    assert (vol / "index.html").read_text() == "v1\n"
    assert _git(vol, "rev-parse", "HEAD") == first
    (vol / "index.html").write_text("changed")  # idempotent: a second call keeps the clone
    gitrepo.setup("git-volume", str(vol), str(src), first, ".")
    assert (vol / "index.html").read_text() == "changed"


def test_gitrepo_file_url_subdirectory_and_default_name(tmp_path: Path, repo: tuple[Path, str, str]) -> None:
    src, _, second = repo
    v1 = tmp_path / "v1"
    gitrepo.setup("g", str(v1), f"file://{src}", "", "site")
    assert (v1 / "site" / "index.html").read_text() == "v2\n"
    v2 = tmp_path / "v2"
    gitrepo.setup("g", str(v2), str(src), second[:10], "")
    assert (v2 / "src-repo" / "index.html").read_text() == "v2\n"
    assert not any(p.name.endswith(".cloning") for p in tmp_path.iterdir())


def test_gitrepo_errors(tmp_path: Path, repo: tuple[Path, str, str]) -> None:
    src, _, _ = repo
    with pytest.raises(VolumeError, match=r"gitRepo volume git-volume: cannot clone git@xxxx:me/my-repo.git: .+"):
        gitrepo.setup("git-volume", str(tmp_path / "a"), "git@xxxx:me/my-repo.git", "", "", timeout=60)
    with pytest.raises(VolumeError, match=r"cannot clone /nonexistent/repo: .*does not exist"):
        gitrepo.setup("git-volume", str(tmp_path / "b"), "/nonexistent/repo", "", "")
    with pytest.raises(VolumeError, match=r"cannot check out revision deadbeef"):
        gitrepo.setup("git-volume", str(tmp_path / "c"), str(src), "deadbeef", ".")
    with pytest.raises(VolumeError, match=r"must not contain '\.\.'"):
        gitrepo.setup("git-volume", str(tmp_path / "d"), str(src), "", "../x")
    with pytest.raises(VolumeError, match="must not start with '-'"):
        gitrepo.setup("git-volume", str(tmp_path / "e"), "--upload-pack=touch /tmp/x", "", "")
    # nothing half-done is left behind, so a retry starts clean
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src-repo"]


def test_nfs_mount_args() -> None:
    args = nfs.mount_args("10.0.0.5", "/exports/a", "/t", True, [])
    assert args == ["-t", "nfs", "-o", "ro", "10.0.0.5:/exports/a", "/t"]
    args = nfs.mount_args("fd00::5", "/e", "/t", False, ["vers=4.1"])
    assert args == ["-t", "nfs", "-o", "vers=4.1", "[fd00::5]:/e", "/t"]


def test_nfs_status_is_consistent() -> None:
    ok, why = nfs.nfs_client_status()
    assert nfs.nfs_client_available() is ok
    assert ok or why


def test_nfs_without_client_is_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nfs, "nfs_client_status", lambda: (False, "the kernel has no NFS client"))
    msg = r"nfs volume data: cannot mount 10.0.0.5:/exports: the kernel has no NFS client"
    with pytest.raises(VolumeError, match=msg):
        nfs.setup("data", str(tmp_path / "m"), "10.0.0.5", "/exports", False)
