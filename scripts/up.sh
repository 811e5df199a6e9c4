#!/usr/bin/env bash
# The first command: install what is needed, start a local one-node cluster with mutual TLS,
# and apply the example app. Extra arguments go to `pinnace up` (e.g. --nodes 3 --store-replicas 3).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# The example site served through a gitRepo volume.
site=/var/lib/pinnace/example-site.git
if [ ! -d "$site" ]; then
  work=$(mktemp -d)
  printf '<h1>Hello from Pinnace</h1>\n<p>Served from a gitRepo volume.</p>\n' > "$work/index.html"
  git -C "$work" init -q -b main
  git -C "$work" add index.html
  git -C "$work" -c user.name=pinnace -c user.email=pinnace@localhost commit -qm "example site"
  mkdir -p /var/lib/pinnace
  git clone -q --bare "$work" "$site"
  rm -rf "$work"
fi

.venv/bin/pinnace up --example examples/ "$@"
echo
echo "The CLI is .venv/bin/pinnace (or 'source .venv/bin/activate' and then 'pinnace')."
