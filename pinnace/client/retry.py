"""Exponential backoff with jitter, used for UNAVAILABLE retries, watch reconnects and work queues."""

from __future__ import annotations

import random


class Backoff:
    """Delays base, 2*base, 4*base, ... capped at ``cap``, each with +-``jitter`` fraction; ``reset()`` starts over."""

    def __init__(self, base: float = 0.05, cap: float = 2.0, jitter: float = 0.2) -> None:
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self.attempt = 0

    def peek(self) -> float:
        return min(self.cap, self.base * (2**self.attempt))

    def next(self) -> float:
        delay = self.peek()
        self.attempt = min(self.attempt + 1, 62)
        if self.jitter:
            delay *= 1 + random.uniform(-self.jitter, self.jitter)
        return max(0.0, delay)

    def reset(self) -> None:
        self.attempt = 0
