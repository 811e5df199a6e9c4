"""The PV binder (Kubernetes' PersistentVolume controller): binding, phases, reclaim, provisioning.

One active instance per cluster (Lease pinnace-system/pv-binder); see controller.Binder.
"""
