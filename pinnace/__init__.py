"""Pinnace: a small, real Kubernetes in Python. This package is what services and users import."""

__version__ = "0.1.0"
