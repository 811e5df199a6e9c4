"""The network agent: pod networking (IPAM, bridge, veths), the overlay, the service proxy and DNS.

One instance runs per node, in the node's network namespace, like flannel + kube-proxy + a
node-local CoreDNS rolled into one process.
"""
