#!/usr/bin/env bash
# Build and run the compose demo offline. Usage: demo.sh build|up|down|cli ARGS...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
compose() { docker-compose -p pinnace-demo -f "$here/docker-compose.yml" "$@"; }
case "${1:-}" in
  build)
    "$here/build-base-image.sh" "${BASE_IMAGE:-pinnace-base:bookworm}"
    rm -rf "$here/wheels"
    python3 -m pip wheel -q -w "$here/wheels" "$repo"
    compose build
    ;;
  up) compose up -d ;;
  down)
    compose down -v --remove-orphans
    # The nodes' pod cgroups (pinnace/node1..3 under each controller), now empty.
    find /sys/fs/cgroup -depth -type d -path '*/pinnace/node[0-9]*' -exec rmdir {} + 2>/dev/null || true
    ;;
  cli) shift; compose exec -T store1 pinnace --store 127.0.0.1:7000 --tls-dir /pki --tls-name admin "$@" ;;
  *) echo "usage: $0 build|up|down|cli ARGS..." >&2; exit 2 ;;
esac
