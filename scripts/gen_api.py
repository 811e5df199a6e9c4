"""Regenerate pinnace/api/ (messages, gRPC stubs and type stubs) from proto/.

Run `python scripts/gen_api.py`; `--check` exits 1 when the committed code is stale.
protoc writes imports as `pinnace.v1.*` (the proto package path); they are rewritten
to `pinnace.api.*` so the generated modules live flat in pinnace/api/.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "pinnace" / "api"
HEADER = '"""Generated from proto/pinnace/v1 by scripts/gen_api.py; do not edit."""\n'

_PY_IMPORT = re.compile(r"^from pinnace\.v1 import ", re.M)
_PYI_REF = re.compile(r"\bpinnace\.v1\.(\w+_pb2)")


def generate(dest: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / "pinnace" / "v1").glob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        import grpc_tools

        include = Path(grpc_tools.__file__).parent / "_proto"
        args = [
            "protoc",
            f"-I{PROTO_DIR}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--grpc_python_out={tmp}",
            f"--mypy_out={tmp}",
            f"--mypy_grpc_out={tmp}",
            *protos,
        ]
        # The mypy plugins announce every file on stderr; keep that quiet unless protoc fails.
        saved = os.dup(2)
        with open(os.path.join(tmp, "protoc.log"), "w") as log:
            os.dup2(log.fileno(), 2)
            try:
                rc = protoc.main(args)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
        if rc != 0:
            raise SystemExit("protoc failed:\n" + Path(tmp, "protoc.log").read_text())
        os.unlink(os.path.join(tmp, "protoc.log"))
        dest.mkdir(parents=True, exist_ok=True)
        for f in sorted((Path(tmp) / "pinnace" / "v1").iterdir()):
            text = f.read_text()
            if f.suffix == ".py":
                text = _PY_IMPORT.sub("from pinnace.api import ", text)
            else:
                text = re.sub(r"^import pinnace\.v1\.(\w+)$", r"import pinnace.api.\1", text, flags=re.M)
                text = _PYI_REF.sub(r"pinnace.api.\1", text)
            (dest / f.name).write_text(text)
    (dest / "__init__.py").write_text(HEADER)
    (dest / "py.typed").write_text("")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if pinnace/api is stale")
    ns = parser.parse_args()
    if not ns.check:
        for old in OUT_DIR.glob("*_pb2*"):
            old.unlink()
        generate(OUT_DIR)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = {p.name: p.read_text() for p in Path(tmp).iterdir()}
        have = {p.name: p.read_text() for p in OUT_DIR.iterdir() if p.is_file()}
        if fresh != have:
            stale = sorted(set(fresh) ^ set(have) | {k for k in fresh if have.get(k) != fresh[k]})
            print("pinnace/api is stale; run python scripts/gen_api.py:", ", ".join(stale), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
