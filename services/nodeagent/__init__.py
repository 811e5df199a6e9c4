"""The node agent (like the kubelet): runs the pods bound to its node with the host or Docker runtime."""
