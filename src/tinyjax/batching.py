"""Batching: run a function written for one example on a whole batch, one rule per primitive.

A :class:`BatchTracer` boxes a batched value and the axis its examples run along (``None``
for a value shared by every example). Each batching rule applies the primitive to batched
values and says where the output's batch axis is. Most rules first move the batch axis to
the front, broadcasting shared operands, so that one simple case covers them all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tinyjax import primitives as ops
from tinyjax.core import (
    Primitive,
    ShapedArray,
    Trace,
    Tracer,
    as_value,
    aval_of,
    flatten_outputs,
    new_trace,
    rule_for,
    unflatten_outputs,
)
from tinyjax.errors import InAxesError


class BatchTracer(Tracer):
    """A batch of values with the examples along ``axis`` (``None``: one value for all).

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> _ = tj.vmap(lambda x: print(x) or x)(np.zeros((5, 3), np.float32))
        BatchTracer(f32[3])
    """

    def __init__(self, trace: Trace, value: Any, axis: int | None) -> None:
        self.trace, self.value, self.axis = trace, value, axis

    @property
    def aval(self) -> ShapedArray:
        """The shape and dtype of one example."""
        aval = aval_of(self.value)
        if self.axis is None:
            return aval
        return ShapedArray(aval.shape[: self.axis] + aval.shape[self.axis + 1 :], aval.dtype)


class BatchTrace(Trace):
    """Applies each primitive's batching rule; ``size`` is the number of examples.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> from tinyjax.core import new_trace
        >>> from tinyjax.batching import BatchTrace, BatchTracer
        >>> with new_trace(BatchTrace, 2) as trace:
        ...     y = tj.reduce_sum(BatchTracer(trace, np.ones((3, 2), np.float32), 1))
        >>> y.value, y.axis
        (array([3., 3.], dtype=float32), 0)
    """

    name = "vmap"
    abstraction = "it stands for a different value in each example of the batch"

    def __init__(self, level: int, size: int) -> None:
        super().__init__(level)
        self.size = size

    def pure(self, x: Any) -> BatchTracer:
        """A constant is shared by every example."""
        return BatchTracer(self, x, None)

    def process(self, primitive: Primitive, tracers: list[Any], params: dict[str, Any]) -> Any:
        """Run the batching rule, unless no operand is batched."""
        values, axes = [t.value for t in tracers], [t.axis for t in tracers]
        if all(axis is None for axis in axes):
            return BatchTracer(self, primitive.bind(*values, **params), None)
        rule = rule_for(BATCH_RULES, primitive, "vmap", "tinyjax.batching.BATCH_RULES")
        return BatchTracer(self, *rule(self.size, values, axes, **params))


def move_batch_axis_to_front(x: Any, axis: int | None, size: int) -> Any:
    """``x`` with its batch axis first; a shared value (``axis=None``) is repeated ``size`` times.

    Example:
        >>> import numpy as np
        >>> from tinyjax.batching import move_batch_axis_to_front
        >>> move_batch_axis_to_front(np.zeros((3, 2), np.float32), 1, 2).shape
        (2, 3)
        >>> move_batch_axis_to_front(np.zeros(3, np.float32), None, 2).shape
        (2, 3)
    """
    ndim = aval_of(x).ndim
    if axis is None:
        return ops.broadcast(x, (size, *aval_of(x).shape), tuple(range(1, ndim + 1)))
    if axis == 0:
        return x
    return ops.transpose(x, (axis, *(i for i in range(ndim) if i != axis)))


def vmap(
    f: Callable[..., Any], in_axes: int | None | Sequence[int | None] = 0
) -> Callable[..., Any]:
    """Map ``f`` over an axis of its arguments; outputs have the batch axis first.

    Args:
        f: a function of arrays returning an array or a tuple of arrays.
        in_axes: for each argument, the axis its examples run along, or ``None`` for an
            argument shared by all examples; a single int or ``None`` applies to all.

    Returns:
        The batched function.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> xs = np.arange(6, dtype=np.float32).reshape(2, 3)
        >>> tj.vmap(tj.reduce_sum, in_axes=1)(xs)
        array([3., 5., 7.], dtype=float32)
    """

    def batched(*args: Any) -> Any:
        args = [as_value(arg) for arg in args]
        axes, size = _check_in_axes(in_axes, args)
        with new_trace(BatchTrace, size) as trace:
            boxed = [
                a if ax is None else BatchTracer(trace, a, ax)
                for a, ax in zip(args, axes, strict=True)
            ]
            outs, was_tuple = flatten_outputs(f(*boxed))
            outs = [trace.lift(out) for out in outs]
            fronted = [move_batch_axis_to_front(out.value, out.axis, size) for out in outs]
        return unflatten_outputs(fronted, was_tuple)

    return batched


def _check_in_axes(in_axes: Any, args: list[Any]) -> tuple[list[int | None], int]:
    if in_axes is None or isinstance(in_axes, int):
        in_axes = [in_axes] * len(args)
    elif len(in_axes) != len(args):
        raise InAxesError(
            f"vmap got in_axes={tuple(in_axes)} with {len(in_axes)} entries for {len(args)} "
            "arguments; give one entry (an int or None) per argument."
        )
    axes, sizes = [], {}
    for i, (axis, arg) in enumerate(zip(in_axes, args, strict=True)):
        ndim = aval_of(arg).ndim
        if axis is not None and not (isinstance(axis, int) and -ndim <= axis < ndim):
            raise InAxesError(
                f"vmap got in_axes[{i}]={axis!r} for argument {i} of shape {aval_of(arg)}; use "
                f"an int in [{-ndim}, {ndim}), or None for an argument shared by all examples."
            )
        axes.append(None if axis is None else axis % ndim)
        if axis is not None:
            sizes[i] = aval_of(arg).shape[axis]
    if not sizes:
        raise InAxesError(
            "vmap needs at least one batched argument, but in_axes is None for "
            "all of them; give the axis to map over for one argument or more."
        )
    if len(set(sizes.values())) > 1:
        found = ", ".join(f"argument {i} has {n}" for i, n in sizes.items())
        raise InAxesError(
            f"vmap found different batch sizes along in_axes: {found}; map over axes of one size."
        )
    return axes, next(iter(sizes.values()))


def _elementwise(primitive):
    def rule(size, values, batch_axes):
        if len(set(batch_axes)) == 1:  # all batched along one axis: nothing to move
            return primitive.bind(*values), batch_axes[0]
        fronted = map(move_batch_axis_to_front, values, batch_axes, [size] * len(values))
        return primitive.bind(*fronted), 0

    return rule


def _reduce_sum(size, values, batch_axes, *, axes):
    (x,), (batch_axis,) = values, batch_axes
    # Example axis a is axis a of the batch if it comes before the batch axis, else a + 1.
    summed = tuple(a + (a >= batch_axis) for a in axes)
    return ops.reduce_sum_p.bind(x, axes=summed), batch_axis - sum(a < batch_axis for a in axes)


def _broadcast(size, values, batch_axes, *, shape, axes):
    x = move_batch_axis_to_front(values[0], batch_axes[0], size)
    return ops.broadcast_p.bind(x, shape=(size, *shape), axes=(0, *(a + 1 for a in axes))), 0


def _transpose(size, values, batch_axes, *, perm):
    x = move_batch_axis_to_front(values[0], batch_axes[0], size)
    return ops.transpose_p.bind(x, perm=(0, *(p + 1 for p in perm))), 0


# The batching rule of each primitive:
# ``rule(size, values, batch_axes, **params) -> (out, out_batch_axis)``.
BATCH_RULES: dict[Primitive, Callable[..., tuple[Any, int]]] = {
    **{p: _elementwise(p) for p in ops.ELEMENTWISE},
    ops.reduce_sum_p: _reduce_sum,
    ops.broadcast_p: _broadcast,
    ops.transpose_p: _transpose,
}
