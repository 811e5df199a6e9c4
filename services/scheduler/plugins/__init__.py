"""Filter and score plugins; `default_plugins()` lists them in the order the framework runs them."""

from __future__ import annotations

from services.scheduler.framework import FilterPlugin, ScorePlugin
from services.scheduler.plugins.interpod import InterPodAffinity
from services.scheduler.plugins.nodeaffinity import NodeAffinity
from services.scheduler.plugins.nodebasic import NodeName, NodeUnschedulable
from services.scheduler.plugins.resources import BalancedAllocation, LeastAllocated, NodeResourcesFit
from services.scheduler.plugins.spread import PodTopologySpread
from services.scheduler.plugins.taints import TaintToleration
from services.scheduler.plugins.volumes import VolumePlacement


def default_plugins() -> tuple[list[FilterPlugin], list[ScorePlugin]]:
    """(filters in order, scores) like kube-scheduler's default profile."""
    affinity = NodeAffinity()
    taints = TaintToleration()
    interpod = InterPodAffinity()
    spread = PodTopologySpread()
    filters: list[FilterPlugin] = [
        NodeUnschedulable(),
        NodeName(),
        taints,
        affinity,
        VolumePlacement(),
        NodeResourcesFit(),
        spread,
        interpod,
    ]
    scores: list[ScorePlugin] = [LeastAllocated(), BalancedAllocation(), affinity, taints, spread, interpod]
    return filters, scores
