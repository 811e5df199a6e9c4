"""The registry: per-kind defaulting, validation, immutability rules and address allocation."""
