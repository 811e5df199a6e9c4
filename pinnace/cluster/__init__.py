"""The local cluster: `pinnace up/down/status` — PKI, a lab of network namespaces, a supervisor."""
