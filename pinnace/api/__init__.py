"""Generated from proto/pinnace/v1 by scripts/gen_api.py; do not edit."""
