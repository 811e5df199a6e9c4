"""pinnace/api must be exactly what scripts/gen_api.py makes from proto/."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_generated_code_is_fresh() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_api.py"), "--check"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
