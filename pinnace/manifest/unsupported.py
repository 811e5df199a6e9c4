"""Kubernetes fields that Pinnace knows about but does not model yet, by the message they belong in.

A manifest that uses one gets a "not supported yet by Pinnace" error naming the field: never dropped
silently, never mistaken for a typo.
"""

from __future__ import annotations

_VOLUME_SOURCES = (
    "configMap",
    "secret",
    "projected",
    "downwardAPI",
    "csi",
    "ephemeral",
    "image",
    "awsElasticBlockStore",
    "gcePersistentDisk",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "fc",
    "flexVolume",
    "flocker",
    "glusterfs",
    "iscsi",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
)

# protobuf message full name -> camelCase Kubernetes field names it lacks
UNSUPPORTED: dict[str, frozenset[str]] = {
    "pinnace.v1.ObjectMeta": frozenset({"managedFields", "selfLink"}),
    "pinnace.v1.PodSpec": frozenset(
        {
            "hostPID",
            "hostIPC",
            "hostUsers",
            "hostAliases",
            "preemptionPolicy",
            "overhead",
            "runtimeClassName",
            "enableServiceLinks",
            "readinessGates",
            "os",
            "ephemeralContainers",
            "schedulingGates",
            "resourceClaims",
            "resources",
            "setHostnameAsFQDN",
            "serviceAccount",
            "hostnameOverride",
        }
    ),
    "pinnace.v1.Container": frozenset(
        {
            "envFrom",
            "resizePolicy",
            "volumeDevices",
            "terminationMessagePolicy",
            "stdinOnce",
            "restartPolicyRules",
        }
    ),
    "pinnace.v1.EnvVarSource": frozenset({"configMapKeyRef", "secretKeyRef", "resourceFieldRef", "fileKeyRef"}),
    "pinnace.v1.ResourceRequirements": frozenset({"claims"}),
    "pinnace.v1.VolumeMount": frozenset({"mountPropagation", "subPathExpr", "recursiveReadOnly"}),
    "pinnace.v1.SecurityContext": frozenset(
        {"capabilities", "seLinuxOptions", "seccompProfile", "procMount", "windowsOptions", "appArmorProfile"}
    ),
    "pinnace.v1.PodSecurityContext": frozenset(
        {
            "seLinuxOptions",
            "supplementalGroups",
            "supplementalGroupsPolicy",
            "fsGroupChangePolicy",
            "sysctls",
            "seccompProfile",
            "windowsOptions",
            "appArmorProfile",
            "seLinuxChangePolicy",
        }
    ),
    "pinnace.v1.Probe": frozenset({"grpc"}),
    "pinnace.v1.Volume": frozenset(_VOLUME_SOURCES),
    "pinnace.v1.PersistentVolumeSpec": frozenset(
        set(_VOLUME_SOURCES) - {"configMap", "secret", "projected", "downwardAPI", "ephemeral", "image"}
        | {"volumeAttributesClassName"}
    ),
    "pinnace.v1.PersistentVolumeClaimSpec": frozenset({"dataSource", "dataSourceRef", "volumeAttributesClassName"}),
    "pinnace.v1.TopologySpreadConstraint": frozenset(
        {"minDomains", "nodeAffinityPolicy", "nodeTaintsPolicy", "matchLabelKeys"}
    ),
    "pinnace.v1.PodAffinityTerm": frozenset({"namespaceSelector", "matchLabelKeys", "mismatchLabelKeys"}),
    "pinnace.v1.ServiceSpec": frozenset(
        {
            "loadBalancerSourceRanges",
            "healthCheckNodePort",
            "loadBalancerClass",
            "allocateLoadBalancerNodePorts",
            "trafficDistribution",
        }
    ),
    "pinnace.v1.NodeSpec": frozenset({"configSource", "externalID"}),
    "pinnace.v1.NodeStatus": frozenset(
        {"images", "volumesInUse", "volumesAttached", "config", "features", "runtimeHandlers"}
    ),
    "pinnace.v1.PodStatus": frozenset(
        {"hostIPs", "ephemeralContainerStatuses", "resize", "resourceClaimStatuses", "observedGeneration"}
    ),
    "pinnace.v1.ContainerStatus": frozenset(
        {"allocatedResources", "allocatedResourcesStatus", "resources", "volumeMounts", "user", "stopSignal"}
    ),
    "pinnace.v1.Event": frozenset({"action", "related", "series", "eventTime"}),
    "pinnace.v1.DeploymentStatus": frozenset({"terminatingReplicas"}),
    "pinnace.v1.ReplicaSetStatus": frozenset({"terminatingReplicas"}),
    "pinnace.v1.LeaseSpec": frozenset({"preferredHolder", "strategy"}),
    "pinnace.v1.Lifecycle": frozenset({"stopSignal"}),
    "pinnace.v1.LoadBalancerIngress": frozenset({"ipMode", "ports"}),
    "pinnace.v1.PersistentVolumeStatus": frozenset({"lastPhaseTransitionTime"}),
    "pinnace.v1.PersistentVolumeClaimStatus": frozenset(
        {
            "allocatedResources",
            "allocatedResourceStatuses",
            "currentVolumeAttributesClassName",
            "modifyVolumeStatus",
        }
    ),
    "pinnace.v1.NodeSystemInfo": frozenset({"systemUUID", "bootID", "kubeProxyVersion", "swap"}),
    "pinnace.v1.NamespaceStatus": frozenset({"conditions"}),
}


def is_unsupported(message_full_name: str, json_field: str) -> bool:
    return json_field in UNSUPPORTED.get(message_full_name, frozenset())
