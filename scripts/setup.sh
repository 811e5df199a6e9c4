#!/usr/bin/env bash
# Install everything Pinnace needs on a fresh Debian machine (as root): system packages,
# then a virtual environment in .venv with Pinnace and its development tools.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages and later creates namespaces)" >&2
  exit 1
fi

PKGS=(iproute2 iptables git busybox-static procps psmisc util-linux kmod
      docker.io nfs-ganesha nfs-ganesha-vfs rpcbind iperf3 dnsutils ca-certificates
      python3 python3-venv python3-dev gcc)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
echo "setup.sh: ready (.venv)"
