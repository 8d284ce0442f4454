"""The concurrency window: how many requests may be in flight at once, grown and cut as TCP's congestion window is
(slow start, then additive increase / multiplicative decrease)."""

from __future__ import annotations

from azmm_magic.core.errors import ConfigError


class ConcurrencyWindow:
    """At most :attr:`size` requests in flight.

    It starts at ``initial`` (default: ``maximum``) and, while nothing pushes back, grows by one per success (slow
    start: it doubles every round trip) up to ``maximum``, or at once to what the service says it still takes
    (:meth:`open_to`). A cut (:meth:`cut`, after a 429) halves it and ends slow start: from then on it grows by
    ``1/size`` per success (about +1 per round trip). It is cut at most once per pause: a 429 for a request sent
    before the last cut does not count again. Times are given by the caller (no clock here)."""

    def __init__(self, maximum: int, *, minimum: int = 1, initial: int | None = None) -> None:
        if maximum < 1:
            raise ConfigError(f"concurrency must be at least 1, got {maximum}")
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        self.limit = float(maximum if initial is None else max(self.minimum, min(initial, maximum)))
        self.threshold = float(maximum)  # slow start below this, additive increase above
        self.in_flight = 0
        self.peak_in_flight = 0
        self.decreases = 0
        self._last_decrease = float("-inf")

    @property
    def size(self) -> int:
        """The number of requests allowed in flight now."""
        return max(self.minimum, int(self.limit))

    def has_room(self) -> bool:
        return self.in_flight < self.size

    def take(self) -> None:
        """One more request in flight."""
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def release(self, *, success: bool) -> None:
        """A request is over; a success widens the window (by one in slow start, else by ``1/size``)."""
        self.in_flight -= 1
        if success:
            step = 1.0 if self.limit < self.threshold else 1.0 / max(1.0, self.limit)
            self.limit = min(float(self.maximum), self.limit + step)

    def open_to(self, room: int) -> None:
        """In slow start, open at once to the requests in flight plus ``room`` (what the service says it still
        takes) instead of doubling round trip by round trip."""
        if self.limit < self.threshold:
            self.limit = min(self.threshold, max(self.limit, float(self.in_flight + room)))

    def cut(self, sent_at: float, now: float) -> bool:
        """A 429 at ``now`` for a request sent at ``sent_at``: halve the window, unless it was cut since that
        request was sent. Returns whether it was cut."""
        if sent_at <= self._last_decrease:
            return False
        self.limit = max(float(self.minimum), self.limit / 2)
        self.threshold = self.limit  # no slow start after a cut: additive increase from here
        self._last_decrease = now
        self.decreases += 1
        return True


__all__ = ["ConcurrencyWindow"]
