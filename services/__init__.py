"""Pinnace's server processes: store, scheduler, controllers and the per-node agents."""
