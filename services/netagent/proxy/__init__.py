"""The service proxy: Services + Endpoints -> kube-proxy's iptables layout in the nat table."""
