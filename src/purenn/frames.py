"""The frame stack: the one piece of global state behind :func:`purenn.transform`.

``init`` and ``apply`` push a :class:`Frame` while the user's function runs and pop it in a
``finally`` block, so no frame outlives the call that made it. ``get_parameter`` and its
siblings find the frame on top of the stack; that is how they reach the params, state and key
given to the pure ``init``/``apply`` without the model threading them through every call.

It is public so that a reader can watch the stack from inside a model, as the page that builds
:func:`purenn.transform` does; models themselves never need it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.extend.core


def trace_state() -> Any:
    """Return a token identifying the JAX trace (eager, jit, vmap, ...) active right now.

    A frame records it when pushed, so that a value traced under a ``jit`` inside the model
    cannot be stored in a frame pushed outside it.

    Example:
        >>> import jax
        >>> from purenn.frames import trace_state
        >>> outside, inside = trace_state(), []
        >>> _ = jax.jit(lambda x: inside.append(trace_state()) or x)(1.0)
        >>> inside[0] == outside, trace_state() == outside
        (False, True)
    """
    return jax.extend.core.get_opaque_trace_state(convention="purenn")


@dataclasses.dataclass(eq=False)
class Frame:
    """What one running ``init`` or ``apply`` call knows.

    Example:
        >>> import purenn
        >>> from purenn.frames import current_frame
        >>> seen = []
        >>> def forward():
        ...     seen.append((current_frame().caller, current_frame().is_init))
        >>> purenn.transform(forward).init(None)
        {}
        >>> seen
        [('init', True)]

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
    """Make ``frame`` the current frame for the duration of the ``with`` block.

    Example:
        >>> from purenn.frames import Frame, current_frame, frame_scope
        >>> frame = Frame("init", True, False, {}, {}, {}, None)
        >>> with frame_scope(frame):
        ...     current_frame() is frame
        True
        >>> current_frame() is None
        True
    """
    _FRAMES.append(frame)
    try:
        yield frame
    finally:
        _FRAMES.pop()


def current_frame() -> Frame | None:
    """Return the innermost running frame, or ``None`` outside ``init``/``apply``.

    Example:
        >>> from purenn.frames import current_frame
        >>> current_frame() is None
        True
    """
    return _FRAMES[-1] if _FRAMES else None


def stack_depth() -> int:
    """Return how many ``init``/``apply`` calls are running, one inside another.

    Example:
        >>> import purenn
        >>> from purenn.frames import stack_depth
        >>> inner = purenn.transform(lambda: print("inner sees", stack_depth()))
        >>> purenn.transform(lambda: inner.init(None)).init(None)
        inner sees 2
        {}
        >>> stack_depth()
        0
    """
    return len(_FRAMES)


@contextlib.contextmanager
def module_scope(module: Any) -> Iterator[None]:
    """Record that a method of ``module`` is running, so what it creates is named under it.

    Example:
        >>> from purenn.frames import Frame, current_frame, frame_scope, module_scope
        >>> with frame_scope(Frame("init", True, False, {}, {}, {}, None)) as frame:
        ...     with module_scope("encoder"):
        ...         print(frame.module_stack)
        ['encoder']
    """
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
