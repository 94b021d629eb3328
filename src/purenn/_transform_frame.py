"""The frame stack: the one piece of global state behind :func:`purenn.transform`.

``init`` and ``apply`` push a :class:`Frame` while the user's function runs and pop it in a
``finally`` block, so no frame outlives the call that made it. ``get_parameter`` and its
siblings find the frame on top of the stack; that is how they reach the params, state and key
given to the pure ``init``/``apply`` without the model threading them through every call.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.extend.core


def trace_state() -> Any:
    """Return a token identifying the JAX trace (eager, jit, vmap, ...) active right now."""
    return jax.extend.core.get_opaque_trace_state(convention="purenn")


@dataclasses.dataclass(eq=False)
class Frame:
    """What one running ``init`` or ``apply`` call knows.

    Attributes:
        caller: ``"init"`` or ``"apply"``, used in error messages.
        is_init: whether missing parameters and state should be created rather than reported.
        with_state: whether the function came from ``transform_with_state``.
        params: during init, the nested dict being filled; during apply, the caller's mapping.
        state: the current state, a nested dict owned by this frame.
        initial_state: during init, the first value each state entry was given.
        rng: the key the next ``next_rng_key`` call splits, or ``None``.
        trace: the JAX trace active when the frame was pushed.
        module_stack: modules whose methods are running, innermost last.
        used_names: the module names taken so far, per enclosing module name.
    """

    caller: str
    is_init: bool
    with_state: bool
    params: Mapping[str, Mapping[str, Any]]
    state: dict[str, dict[str, Any]]
    initial_state: dict[str, dict[str, Any]]
    rng: Any
    trace: Any = dataclasses.field(default_factory=trace_state)
    module_stack: list[Any] = dataclasses.field(default_factory=list)
    used_names: dict[str, set[str]] = dataclasses.field(default_factory=dict)

    def next_key(self) -> jax.Array:
        """Split the frame's key: keep one half for later calls, hand out the other."""
        self.rng, key = jax.random.split(self.rng)
        return key

    def unique_name(self, scope: str, base: str) -> str:
        """Return ``base``, or ``base_1``, ``base_2``, ... if taken within ``scope``."""
        used = self.used_names.setdefault(scope, set())
        name, count = base, 0
        while name in used:
            count += 1
            name = f"{base}_{count}"
        used.add(name)
        return name


_FRAMES: list[Frame] = []


@contextlib.contextmanager
def frame_scope(frame: Frame) -> Iterator[Frame]:
    """Make ``frame`` the current frame for the duration of the ``with`` block."""
    _FRAMES.append(frame)
    try:
        yield frame
    finally:
        _FRAMES.pop()


def current_frame() -> Frame | None:
    """Return the innermost running frame, or ``None`` outside ``init``/``apply``."""
    return _FRAMES[-1] if _FRAMES else None


@contextlib.contextmanager
def module_scope(module: Any) -> Iterator[None]:
    """Record that a method of ``module`` is running, so what it creates is named under it."""
    frame = current_frame()
    if frame is None:
        # Outside a transform there is nothing to record; Module.__init__ reports the misuse.
        yield
        return
    frame.module_stack.append(module)
    try:
        yield
    finally:
        frame.module_stack.pop()
