"""Where does the time go? A per-op table of forward and backward time.

For example::

    from tinyllm import profiler
    with profiler.profile() as prof:
        logits, loss = model(x, y)
        loss.backward()
    print(prof.table())

Every :class:`~tinyllm.tensor.Function` is timed on its way forward and back (on a GPU the
device is synchronised around each op, so the numbers are real but the run is slower).
Python time between ops (building the graph, the optimizer) is reported as "other".
"""
from __future__ import annotations

import contextlib
import time
from collections import defaultdict

from .tensor import backward_hooks, forward_hooks

__all__ = ["profile", "Profile"]


class Profile:
    """Accumulated calls and seconds per op name, for forward and backward."""

    def __init__(self):
        self.forward = defaultdict(lambda: [0, 0.0])   # name -> [calls, seconds]
        self.backward = defaultdict(lambda: [0, 0.0])
        self.wall = 0.0

    def _timed(self, table):
        def hook(fn, _value, call):
            fn.device.synchronize()
            start = time.perf_counter()
            result = call()
            fn.device.synchronize()
            entry = table[type(fn).__name__]
            entry[0] += 1
            entry[1] += time.perf_counter() - start
            return result
        return hook

    def rows(self):
        """One dict per op: name, forward/backward calls and milliseconds, share of the total."""
        names = set(self.forward) | set(self.backward)
        rows = []
        for name in names:
            fc, fs = self.forward.get(name, (0, 0.0))
            bc, bs = self.backward.get(name, (0, 0.0))
            rows.append({"op": name, "forward_calls": fc, "forward_ms": fs * 1e3,
                         "backward_calls": bc, "backward_ms": bs * 1e3, "total_ms": (fs + bs) * 1e3})
        rows.sort(key=lambda r: -r["total_ms"])
        return rows

    @property
    def op_ms(self):
        return sum(r["total_ms"] for r in self.rows())

    def table(self, top=25):
        """A text table, slowest ops first, with the time outside ops as "other"."""
        rows = self.rows()
        wall_ms = self.wall * 1e3
        lines = [f"{'op':<22}{'fwd calls':>10}{'fwd ms':>10}{'bwd calls':>10}{'bwd ms':>10}"
                 f"{'total ms':>10}{'share':>8}"]
        for r in rows[:top]:
            share = r["total_ms"] / wall_ms if wall_ms else 0.0
            lines.append(f"{r['op']:<22}{r['forward_calls']:>10}{r['forward_ms']:>10.2f}"
                         f"{r['backward_calls']:>10}{r['backward_ms']:>10.2f}{r['total_ms']:>10.2f}"
                         f"{share:>8.1%}")
        other = wall_ms - self.op_ms
        lines.append(f"{'other (python, optim)':<22}{'':>10}{'':>10}{'':>10}{'':>10}{other:>10.2f}"
                     f"{(other / wall_ms if wall_ms else 0):>8.1%}")
        lines.append(f"{'wall':<22}{'':>40}{wall_ms:>10.2f}")
        return "\n".join(lines)


@contextlib.contextmanager
def profile():
    """Time every op run inside the block; yields a :class:`Profile`."""
    prof = Profile()
    fwd, bwd = prof._timed(prof.forward), prof._timed(prof.backward)
    forward_hooks.append(fwd)
    backward_hooks.append(bwd)
    start = time.perf_counter()
    try:
        yield prof
    finally:
        prof.wall += time.perf_counter() - start
        forward_hooks.remove(fwd)
        backward_hooks.remove(bwd)
