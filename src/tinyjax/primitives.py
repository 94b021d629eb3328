"""The primitives, with their NumPy evaluation and shape rules, and the functions that apply them.

Everything a tinyjax program computes is made of these thirteen operations. The functions
below are what programs call; each checks and normalises its arguments, then binds one
primitive. Binary operations want operands of one shape and dtype (there is no implicit
broadcasting, as in ``jax.lax``), except that a Python number takes the other operand's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyjax.core import Primitive, ShapedArray, aval_of
from tinyjax.errors import ShapeError


def _same_as_input(x):
    return x


def _binary_shape(name, out_dtype=None):
    def rule(x, y):
        if x != y:
            raise ShapeError(
                f"{name} needs operands of one shape and dtype, got {x} and {y}; "
                "broadcast one first."
            )
        return ShapedArray(x.shape, np.dtype(out_dtype or x.dtype))

    return rule


def _select_shape(pred, on_true, on_false):
    if pred.dtype != np.bool_ or pred.shape != on_true.shape or on_true != on_false:
        raise ShapeError(
            f"select needs a bool predicate and two branches of one shape, got {pred}, "
            f"{on_true} and {on_false}; make the predicate with greater, broadcast the rest."
        )
    return on_true


def _reduce_sum_shape(x, *, axes):
    if len(set(axes)) != len(axes) or not all(0 <= axis < x.ndim for axis in axes):
        raise ShapeError(f"reduce_sum got axes={axes} for an operand {x}; name each axis once.")
    return ShapedArray(tuple(d for i, d in enumerate(x.shape) if i not in axes), x.dtype)


def _broadcast_shape(x, *, shape, axes):
    increasing = all(a < b for a, b in zip(axes, axes[1:], strict=False))
    fits = all(0 <= a < len(shape) and shape[a] == d for a, d in zip(axes, x.shape, strict=True))
    if len(axes) != x.ndim or not (increasing and fits):
        raise ShapeError(
            f"broadcast cannot place {x} at axes={axes} of shape {shape}; give one increasing "
            "output axis per input axis, of the same size."
        )
    return ShapedArray(shape, x.dtype)


def _transpose_shape(x, *, perm):
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError(f"transpose got perm={perm} for {x}; give each axis exactly once.")
    return ShapedArray(tuple(x.shape[p] for p in perm), x.dtype)


def _broadcast_impl(x, *, shape, axes):
    new_axes = tuple(i for i in range(len(shape)) if i not in axes)
    return np.broadcast_to(np.expand_dims(x, new_axes), shape)


add_p = Primitive("add", np.add, _binary_shape("add"))
mul_p = Primitive("mul", np.multiply, _binary_shape("mul"))
neg_p = Primitive("neg", np.negative, _same_as_input)
sin_p = Primitive("sin", np.sin, _same_as_input)
cos_p = Primitive("cos", np.cos, _same_as_input)
exp_p = Primitive("exp", np.exp, _same_as_input)
log_p = Primitive("log", np.log, _same_as_input)
max_p = Primitive("max", np.maximum, _binary_shape("max"))
greater_p = Primitive("greater", np.greater, _binary_shape("greater", np.bool_))
select_p = Primitive("select", np.where, _select_shape)
reduce_sum_p = Primitive("reduce_sum", lambda x, *, axes: np.sum(x, axis=axes), _reduce_sum_shape)
broadcast_p = Primitive("broadcast", _broadcast_impl, _broadcast_shape)
transpose_p = Primitive("transpose", lambda x, *, perm: np.transpose(x, perm), _transpose_shape)

#: Every primitive, in the order defined above.
PRIMITIVES = tuple(value for value in dict(globals()).values() if isinstance(value, Primitive))
#: The elementwise primitives: all operands and the output have one shape.
ELEMENTWISE = PRIMITIVES[:10]


def _pair(x, y):
    # A Python number takes the other operand's shape and dtype, so `2.0 * x` just works.
    if isinstance(x, int | float) and not isinstance(y, int | float):
        x = np.full(aval_of(y).shape, x, aval_of(y).dtype)
    if isinstance(y, int | float) and not isinstance(x, int | float):
        y = np.full(aval_of(x).shape, y, aval_of(x).dtype)
    return x, y


def add(x: Any, y: Any) -> Any:
    """Elementwise ``x + y``.

    Example:
        >>> import tinyjax as tj
        >>> tj.add(1.0, 2.0)
        np.float32(3.0)
    """
    return add_p.bind(*_pair(x, y))


def mul(x: Any, y: Any) -> Any:
    """Elementwise ``x * y``.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> tj.mul(np.arange(3, dtype=np.float32), 2.0)
        array([0., 2., 4.], dtype=float32)
    """
    return mul_p.bind(*_pair(x, y))


def neg(x: Any) -> Any:
    """Elementwise ``-x``.

    Example:
        >>> import tinyjax as tj
        >>> tj.neg(2.0)
        np.float32(-2.0)
    """
    return neg_p.bind(x)


def sin(x: Any) -> Any:
    """Elementwise sine.

    Example:
        >>> import tinyjax as tj
        >>> tj.sin(0.0)
        np.float32(0.0)
    """
    return sin_p.bind(x)


def cos(x: Any) -> Any:
    """Elementwise cosine.

    Example:
        >>> import tinyjax as tj
        >>> tj.cos(0.0)
        np.float32(1.0)
    """
    return cos_p.bind(x)


def exp(x: Any) -> Any:
    """Elementwise exponential.

    Example:
        >>> import tinyjax as tj
        >>> tj.exp(0.0)
        np.float32(1.0)
    """
    return exp_p.bind(x)


def log(x: Any) -> Any:
    """Elementwise natural logarithm.

    Example:
        >>> import tinyjax as tj
        >>> tj.log(1.0)
        np.float32(0.0)
    """
    return log_p.bind(x)


def maximum(x: Any, y: Any) -> Any:
    """Elementwise maximum (the ``max`` primitive).

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> tj.maximum(np.array([1.0, -1.0], np.float32), 0.0)
        array([1., 0.], dtype=float32)
    """
    return max_p.bind(*_pair(x, y))


def greater(x: Any, y: Any) -> Any:
    """Elementwise ``x > y``, as bools.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> tj.greater(np.array([1.0, -1.0], np.float32), 0.0)
        array([ True, False])
    """
    return greater_p.bind(*_pair(x, y))


def select(pred: Any, on_true: Any, on_false: Any) -> Any:
    """Elementwise ``on_true if pred else on_false``: the traceable replacement of ``if``.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> x = np.array([1.0, -2.0], np.float32)
        >>> tj.select(tj.greater(x, 0.0), x, tj.neg(x))
        array([1., 2.], dtype=float32)
    """
    return select_p.bind(pred, *_pair(on_true, on_false))


def reduce_sum(x: Any, axes: int | tuple[int, ...] | None = None) -> Any:
    """Sum over ``axes`` (an int, a tuple, or ``None`` for all of them).

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> tj.reduce_sum(np.ones((2, 3), np.float32), axes=1)
        array([3., 3.], dtype=float32)
    """
    ndim = aval_of(x).ndim
    if axes is None:
        axes = tuple(range(ndim))
    axes = (axes,) if isinstance(axes, int) else axes
    return reduce_sum_p.bind(x, axes=tuple(sorted(a % ndim if ndim else a for a in axes)))


def broadcast(x: Any, shape: tuple[int, ...], axes: tuple[int, ...]) -> Any:
    """Place ``x``'s axes at output ``axes`` of ``shape`` and repeat it along the others.

    As ``jax.lax.broadcast_in_dim``, without stretching axes of size 1.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> tj.broadcast(np.array([1.0, 2.0], np.float32), shape=(3, 2), axes=(1,))
        array([[1., 2.],
               [1., 2.],
               [1., 2.]], dtype=float32)
    """
    return broadcast_p.bind(x, shape=tuple(shape), axes=tuple(axes))


def transpose(x: Any, perm: tuple[int, ...] | None = None) -> Any:
    """Permute the axes: output axis ``i`` is input axis ``perm[i]`` (reversed by default).

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> tj.transpose(np.zeros((2, 3, 4), np.float32), perm=(2, 0, 1)).shape
        (4, 2, 3)
    """
    if perm is None:
        perm = tuple(reversed(range(aval_of(x).ndim)))
    return transpose_p.bind(x, perm=tuple(perm))
