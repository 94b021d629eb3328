"""Honest wall-clock timings of JAX functions, and a stamp of where they ran.

JAX dispatches work asynchronously, and a jitted function compiles on its first call. A timing
that forgets either measures the wrong thing: the time to *enqueue* work, or the compiler.
:func:`measure` therefore times the first call separately, then blocks on every result before
stopping the clock, and reports the minimum (the least disturbed run) and the median (the
typical one) over several repeats.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jaxlib

__all__ = ["Timing", "environment", "environment_summary", "format_seconds", "measure"]


@dataclass(frozen=True)
class Timing:
    """The result of :func:`measure`; all times are seconds per call.

    Attributes:
        first: the first call, including tracing and compilation for a jitted function.
        min: the fastest of the timed repeats.
        median: the median of the timed repeats.
        repeats: how many repeats were timed.
        number: how many calls each repeat made (its total is divided by this).

    Example:
        >>> from purenn.timing import Timing
        >>> t = Timing(first=2e-3, min=1e-6, median=2e-6, repeats=5, number=10)
        >>> print(t)
        median 2.00 µs, min 1.00 µs (5 repeats of 10 calls; first call 2.00 ms)
    """

    first: float
    min: float
    median: float
    repeats: int
    number: int

    def __str__(self) -> str:
        return (
            f"median {format_seconds(self.median)}, min {format_seconds(self.min)} "
            f"({self.repeats} repeats of {self.number} calls; "
            f"first call {format_seconds(self.first)})"
        )


def format_seconds(seconds: float) -> str:
    """Format a duration with the unit that keeps it between 1 and 1000.

    Args:
        seconds: a non-negative duration in seconds.

    Returns:
        The duration as text with three significant figures, e.g. ``"12.3 ms"``.

    Example:
        >>> from purenn.timing import format_seconds
        >>> format_seconds(0.0123), format_seconds(4.5e-7), format_seconds(2.0)
        ('12.3 ms', '450 ns', '2.00 s')
    """
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{_three_figures(seconds / scale)} {unit}"
    return f"{_three_figures(seconds / 1e-9)} ns"


def _three_figures(value: float) -> str:
    if value == 0:
        return "0"
    decimals = max(0, 2 - int(math.floor(math.log10(abs(value)))))
    return f"{value:.{decimals}f}"


def measure(
    fn: Callable[..., Any],
    *args: Any,
    repeats: int = 7,
    number: int | None = None,
    min_repeat_seconds: float = 0.02,
    **kwargs: Any,
) -> Timing:
    """Time ``fn(*args, **kwargs)``, waiting for its results to be ready.

    The first call is timed on its own (for a jitted function it includes tracing and
    compilation). Every later repeat makes ``number`` calls and blocks on the last result with
    :func:`jax.block_until_ready`, so asynchronous dispatch cannot hide work.

    Args:
        fn: the function to time; any callable returning arrays, pytrees of arrays or None.
        *args: positional arguments passed to ``fn`` on every call.
        repeats: how many timed repeats to run (at least 1).
        number: calls per repeat. If None, it is chosen so that one repeat takes at least
            ``min_repeat_seconds``, which keeps timer resolution out of fast measurements.
        min_repeat_seconds: the target duration of one repeat when ``number`` is None.
        **kwargs: keyword arguments passed to ``fn`` on every call.

    Returns:
        A :class:`Timing` with the first call, the minimum and the median, in seconds per call.

    Raises:
        ValueError: if ``repeats`` or ``number`` is less than 1.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from purenn.timing import measure
        >>> t = measure(jax.jit(jnp.sin), jnp.ones(1000), repeats=3)
        >>> t.repeats, 0 < t.min <= t.median
        (3, True)
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}; pass repeats=1 or more.")
    if number is not None and number < 1:
        raise ValueError(
            f"number must be at least 1, got {number}; pass number=None to choose it "
            "automatically."
        )

    def run(calls: int) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            result = fn(*args, **kwargs)
        jax.block_until_ready(result)
        return time.perf_counter() - start

    first = run(1)
    if number is None:
        number = 1
        # Grow the batch of calls until one repeat is long enough to time reliably.
        while (elapsed := run(number)) < min_repeat_seconds and number < 1_000_000:
            number = max(number * 2, int(number * min_repeat_seconds / max(elapsed, 1e-9)))
    per_call = [run(number) / number for _ in range(repeats)]
    return Timing(
        first=first,
        min=min(per_call),
        median=statistics.median(per_call),
        repeats=repeats,
        number=number,
    )


def environment() -> dict[str, Any]:
    """Describe where timings were taken: library versions, backend and devices.

    Returns:
        A dict with ``jax``, ``jaxlib``, ``python``, ``backend`` (e.g. ``"cpu"``),
        ``device_kind``, ``device_count``, ``process_count``, ``cpu_count`` and ``machine``.

    Example:
        >>> import jax
        >>> from purenn.timing import environment
        >>> env = environment()
        >>> env["jax"] == jax.__version__, env["device_count"] == jax.device_count()
        (True, True)
    """
    devices = jax.devices()
    return {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "process_count": jax.process_count(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }


def environment_summary() -> str:
    """Return :func:`environment` as one line, for printing beside a timing.

    Returns:
        A line such as ``"jax 0.10.2 · cpu (cpu) × 1 · 2 CPU cores · x86_64"``.

    Example:
        >>> from purenn.timing import environment_summary
        >>> environment_summary().startswith("jax ")
        True
    """
    env = environment()
    return (
        f"jax {env['jax']} · {env['backend']} ({env['device_kind']}) × {env['device_count']}"
        f" · {env['cpu_count']} CPU cores · {env['machine']}"
    )
