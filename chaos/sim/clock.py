"""Per-node clocks: virtual time seen through an offset (skew) and a rate error (drift).

A node's clock reads `local(v)` at virtual time `v` (milliseconds). It never goes back:
the node core requires it, as the runtime's would (it reads a monotonic clock). Skew is
an offset against the other nodes; drift makes it run faster or slower; `jump` moves it
forward at once (a step of NTP, a resumed VM). Integer arithmetic only, so every process
computes the same times.
"""

from __future__ import annotations

from statemachine.errors import InvalidArgument

PPM = 1_000_000
MAX_DRIFT_PPM = 200_000  # 20%: far beyond real oscillators, to stress timeouts


class NodeClock:
    __slots__ = ("_anchor_v", "_anchor_local", "_ppm")

    def __init__(self, offset_ms: int = 0, drift_ppm: int = 0) -> None:
        _check_drift(drift_ppm)
        self._anchor_v = 0
        self._anchor_local = offset_ms
        self._ppm = drift_ppm

    @property
    def drift_ppm(self) -> int:
        return self._ppm

    def local(self, virtual_ms: int) -> int:
        d = virtual_ms - self._anchor_v
        return self._anchor_local + d + (d * self._ppm) // PPM

    def virtual(self, local_ms: int, at_least: int) -> int:
        """The first virtual time, not before `at_least`, at which this clock reads
        `local_ms` or later."""
        # (`local` written out: the loop asks for the time of every node's next timer)
        anchor_v, anchor_local, ppm = self._anchor_v, self._anchor_local, self._ppm
        d = at_least - anchor_v
        if anchor_local + d + (d * ppm) // PPM >= local_ms:
            return at_least
        d = ((local_ms - anchor_local) * PPM) // (PPM + ppm)
        v = max(at_least, anchor_v + d)
        d = v - anchor_v
        while anchor_local + d + (d * ppm) // PPM < local_ms:  # local(v) < local_ms
            d += 1
        while d > at_least - anchor_v:  # v > at_least and local(v - 1) >= local_ms
            e = d - 1
            if anchor_local + e + (e * ppm) // PPM < local_ms:
                break
            d = e
        return anchor_v + d

    def jump(self, now_ms: int, forward_ms: int) -> None:
        if forward_ms < 0:
            raise InvalidArgument("jump.forward_ms", "a node's clock never goes back")
        self._reanchor(now_ms)
        self._anchor_local += forward_ms

    def set_drift(self, now_ms: int, drift_ppm: int) -> None:
        _check_drift(drift_ppm)
        self._reanchor(now_ms)
        self._ppm = drift_ppm

    def _reanchor(self, now_ms: int) -> None:
        self._anchor_local = self.local(now_ms)
        self._anchor_v = now_ms


def _check_drift(ppm: int) -> None:
    if not -MAX_DRIFT_PPM <= ppm <= MAX_DRIFT_PPM:
        raise InvalidArgument("drift_ppm", f"{ppm} is outside ±{MAX_DRIFT_PPM}")
