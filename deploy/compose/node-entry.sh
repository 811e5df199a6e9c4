#!/bin/sh
# A compose "node": the three node agents of one node in one privileged container, each
# restarted if it exits (the container's own restart policy covers the node agent).
set -e
name=${NODE_NAME:?}
ip=$(ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)
common="--node-name $name --store $STORE --run-dir /run/pinnace/$name --data-dir /var/lib/pinnace/$name --tls-dir /pki --tls-name node-$name --log-format json"
keep() { while true; do "$@" || true; echo "pinnace-node: $2 exited; restarting in 2s" >&2; sleep 2; done; }
keep python -m services.netagent $common --backend vxlan --node-ip "$ip" &
keep python -m services.volagent $common &
exec python -m services.nodeagent $common --runtime host --address "$ip" --port 10250
