"""The SLA controller: ApiSla objects, latency observation from node probes, cost, and scaling decisions."""
