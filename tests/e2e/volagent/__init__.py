"""Volume agent end-to-end tests (root): real processes, mounts, nfs-ganesha, the node agent."""
