"""A token bucket: at most ``rate`` messages per second for one channel, on average.

The bucket holds up to one second's worth of tokens, so a worker that was idle
may send a short burst, then settles to the rate. Waiting happens on the event
loop (``asyncio.sleep``), so other channels keep sending.
"""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    def __init__(self, rate: float, capacity: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(rate, 1.0)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self, count: int) -> None:
        """Wait until ``count`` tokens are available, and take them."""
        async with self._lock:
            needed = float(count)
            while True:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= min(needed, self.capacity):
                    self._tokens -= needed  # may go negative: a big batch borrows ahead
                    return
                await asyncio.sleep((min(needed, self.capacity) - self._tokens) / self.rate)
