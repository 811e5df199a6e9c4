"""The volume agent: per-node volume setup for pods (Volumes service) and the cluster's PV binder.

Public helpers other components may use: `nfs_client_available()` (node capability label
pinnace.io/nfs-client).
"""

from services.volagent.plugins.nfs import nfs_client_available, nfs_client_status

__all__ = ["nfs_client_available", "nfs_client_status"]
