"""Plumbing shared by every component: kinds, quantities, selectors, logging, config, TLS, gRPC servers."""
