"""Primitives, tracers and the interpreter stack: the machinery every transform shares.

A program is a Python function that applies :class:`Primitive` operations. Each primitive
call goes through :func:`bind`, which looks at its arguments: plain arrays are evaluated at
once by the primitive's NumPy rule, but an argument boxed in a :class:`Tracer` sends the call
to that tracer's :class:`Trace` (jvp, vmap, staging for jit...). Traces sit on a stack, one
per transform being applied; when tracers of several are mixed, the innermost (highest
level) wins and the others are treated as constants by it. That one rule is what lets
transforms nest: ``grad(vmap(f))``, ``jit(grad(f))`` and so on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyjax.errors import ConcretizationError, EscapedTracerError, MissingRuleError


@dataclass(frozen=True)
class ShapedArray:
    """What a transform may know about an array without its values: shape and dtype.

    Example:
        >>> import numpy as np
        >>> from tinyjax.core import ShapedArray
        >>> print(ShapedArray((2, 3), np.dtype("float32")))
        f32[2,3]
    """

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return len(self.shape)

    def __str__(self) -> str:
        dtype = np.dtype(self.dtype)
        kind = "bool" if dtype.kind == "b" else f"{dtype.kind}{8 * dtype.itemsize}"
        return f"{kind}[{','.join(map(str, self.shape))}]"


def as_value(x: Any) -> Any:
    """Turn a Python number into a NumPy scalar (float32 or bool); leave anything else alone.

    Example:
        >>> from tinyjax.core import as_value
        >>> as_value(2).dtype, as_value(True).dtype
        (dtype('float32'), dtype('bool'))
    """
    if isinstance(x, bool):
        return np.bool_(x)
    if isinstance(x, int | float):
        return np.float32(x)
    return x


def aval_of(x: Any) -> ShapedArray:
    """The shape and dtype of an array, a NumPy or Python scalar, or a tracer.

    Example:
        >>> import numpy as np
        >>> from tinyjax.core import aval_of
        >>> print(aval_of(np.zeros((4, 1), np.float32)), aval_of(1.0))
        f32[4,1] f32[]
    """
    if isinstance(x, Tracer):
        return x.aval
    x = as_value(x)
    return ShapedArray(tuple(np.shape(x)), np.dtype(x.dtype))


def zeros_like(x: Any) -> np.ndarray:
    """A NumPy array of zeros with the shape and dtype of ``x`` (which may be a tracer).

    Example:
        >>> import numpy as np
        >>> from tinyjax.core import zeros_like
        >>> zeros_like(np.ones(2, np.float32))
        array([0., 0.], dtype=float32)
    """
    aval = aval_of(x)
    return np.zeros(aval.shape, aval.dtype)


@dataclass(frozen=True, eq=False)
class Primitive:
    """An operation that transforms see as one step.

    Its evaluation rule ``impl`` computes with NumPy; its ``shape_rule`` maps input
    :class:`ShapedArray` s (and the parameters) to the output's, raising
    :class:`~tinyjax.errors.ShapeError` for operands it cannot combine. Rules for each
    transform live in that transform's module, keyed by the primitive.

    Example:
        >>> import numpy as np
        >>> from tinyjax.core import Primitive
        >>> square_p = Primitive("square", np.square, lambda x: x)
        >>> square_p.bind(np.float32(3.0))
        np.float32(9.0)
    """

    name: str
    impl: Callable[..., Any]
    shape_rule: Callable[..., ShapedArray]

    def bind(self, *args: Any, **params: Any) -> Any:
        """Apply the primitive, going to the innermost transform among ``args``."""
        return bind(self, *args, **params)

    def __repr__(self) -> str:
        return self.name


class Trace:
    """One interpreter on the stack: it boxes values in its tracers and handles primitives.

    Subclasses set ``name`` (used in messages) and implement :meth:`pure` and
    :meth:`process`. ``level`` is the position on the stack; a higher level is further in.

    Example:
        >>> import numpy as np
        >>> from tinyjax.core import EvalTrace
        >>> import tinyjax as tj
        >>> EvalTrace(0).process(tj.primitives.neg_p, [np.float32(2.0)], {})
        np.float32(-2.0)
    """

    name = "trace"
    #: Why a tracer of this trace has no concrete value, for ConcretizationError.
    abstraction = "only its shape and dtype are known while tracing"

    def __init__(self, level: int) -> None:
        self.level = level
        self.finished = False

    def lift(self, x: Any) -> Any:
        """Box ``x`` in this trace unless it already is one of its tracers."""
        if isinstance(x, Tracer) and x.trace is self:
            return x
        return self.pure(as_value(x))

    def pure(self, x: Any) -> Any:
        """Box a value from outside this trace (a constant, or an outer trace's tracer)."""
        raise NotImplementedError

    def process(self, primitive: Primitive, tracers: list[Any], params: dict[str, Any]) -> Any:
        """Apply ``primitive`` to tracers of this trace; return the output, boxed."""
        raise NotImplementedError


class EvalTrace(Trace):
    """The bottom of the stack: checks shapes, then runs the primitive's NumPy rule.

    Example:
        >>> import numpy as np
        >>> from tinyjax.core import EvalTrace
        >>> import tinyjax as tj
        >>> EvalTrace(0).process(tj.primitives.sin_p, [np.float32(0.0)], {})
        np.float32(0.0)
    """

    name = "eval"

    def pure(self, x: Any) -> Any:
        """Values need no box to be evaluated."""
        return x

    def process(self, primitive: Primitive, tracers: list[Any], params: dict[str, Any]) -> Any:
        """Check the operands with the shape rule, then evaluate."""
        primitive.shape_rule(*map(aval_of, tracers), **params)
        return primitive.impl(*tracers, **params)


class Tracer:
    """A value boxed by a trace; primitives applied to it go to that trace.

    Subclasses give ``aval``. Arithmetic operators apply tinyjax primitives, and NumPy
    arrays defer to them, so ``np.ones(2) * tracer`` is traced too.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> tj.make_program(lambda x: 2.0 * x - x, np.float32(1.0)).equations[0].primitive
        mul
    """

    __array_ufunc__ = None
    trace: Trace

    @property
    def aval(self) -> ShapedArray:
        """The shape and dtype of the value this tracer stands for."""
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the value this tracer stands for."""
        return self.aval.shape

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the value this tracer stands for."""
        return self.aval.dtype

    @property
    def ndim(self) -> int:
        """The number of axes of the value this tracer stands for."""
        return self.aval.ndim

    def __bool__(self) -> bool:
        raise ConcretizationError(
            f"Python needed the concrete value of a traced {self.aval} (an `if`, `while`, "
            f"`bool()`, `float()` or `and`/`or` on it), but under {self.trace.name} "
            f"{self.trace.abstraction}.\nCompute both results and choose between them with "
            "tinyjax.select(pred, on_true, on_false) instead of a Python `if`."
        )

    __float__ = __int__ = __index__ = __bool__

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.aval})"

    def __add__(self, other: Any) -> Any:
        return _ops.add(self, other)

    def __radd__(self, other: Any) -> Any:
        return _ops.add(other, self)

    def __sub__(self, other: Any) -> Any:
        # A Python number stays one, so that add gives it this tracer's shape.
        return _ops.add(self, -other if isinstance(other, int | float) else _ops.neg(other))

    def __rsub__(self, other: Any) -> Any:
        return _ops.add(other, _ops.neg(self))

    def __mul__(self, other: Any) -> Any:
        return _ops.mul(self, other)

    def __rmul__(self, other: Any) -> Any:
        return _ops.mul(other, self)

    def __neg__(self) -> Any:
        return _ops.neg(self)

    def __gt__(self, other: Any) -> Any:
        return _ops.greater(self, other)

    def __lt__(self, other: Any) -> Any:
        return _ops.greater(other, self)


# The stack of active interpreters. Evaluation is always at the bottom; each transform
# pushes its trace while the function it transforms runs.
_STACK: list[Trace] = [EvalTrace(0)]


@contextlib.contextmanager
def new_trace(trace_type: type[Trace], *args: Any) -> Iterator[Any]:
    """Push a new trace of ``trace_type`` on the stack while the ``with`` block runs.

    Example:
        >>> from tinyjax.core import new_trace, trace_stack
        >>> from tinyjax.forward import JVPTrace
        >>> with new_trace(JVPTrace):
        ...     print(trace_stack())
        ['eval', 'jvp']
    """
    trace = trace_type(len(_STACK), *args)
    _STACK.append(trace)
    try:
        yield trace
    finally:
        _STACK.pop()
        trace.finished = True


def trace_stack() -> list[str]:
    """The names of the active traces, outermost first.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> tj.jvp(lambda x: print(tj.core.trace_stack()) or x, (1.0,), (1.0,))[0]
        ['eval', 'jvp']
        np.float32(1.0)
    """
    return [trace.name for trace in _STACK]


def bind(primitive: Primitive, *args: Any, **params: Any) -> Any:
    """Apply ``primitive`` through the innermost trace that boxes one of ``args``.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> from tinyjax.core import bind
        >>> bind(tj.primitives.mul_p, np.float32(2.0), np.float32(4.0))
        np.float32(8.0)
    """
    traces = [arg.trace for arg in args if isinstance(arg, Tracer)]
    for trace in traces:
        if trace.finished:
            raise EscapedTracerError(
                f"a tracer of a finished {trace.name} was used after it returned; return "
                "values out of the transformed function instead of storing its tracers."
            )
    trace = max(traces, key=lambda t: t.level, default=_STACK[0])
    return trace.process(primitive, [trace.lift(arg) for arg in args], params)


def rule_for(
    rules: dict[Primitive, Callable[..., Any]], primitive: Primitive, transform: str, where: str
) -> Callable[..., Any]:
    """Look up ``primitive``'s rule for ``transform``, or say which rule to add and where.

    Example:
        >>> import numpy as np
        >>> from tinyjax.core import Primitive, rule_for
        >>> tanh_p = Primitive("tanh", np.tanh, lambda x: x)
        >>> try:
        ...     rule_for({}, tanh_p, "vmap", "tinyjax.batching.BATCH_RULES")
        ... except NotImplementedError as err:
        ...     print(str(err).splitlines()[1])
        Add one: tinyjax.batching.BATCH_RULES[tanh_p] = rule.
    """
    try:
        return rules[primitive]
    except KeyError:
        raise MissingRuleError(
            f"{transform} has no rule for the primitive {primitive.name!r}.\n"
            f"Add one: {where}[{primitive.name}_p] = rule."
        ) from None


def flatten_outputs(out: Any) -> tuple[list[Any], bool]:
    """A function's output as a list of arrays, and whether it was a tuple.

    Example:
        >>> from tinyjax.core import flatten_outputs
        >>> flatten_outputs((1.0, 2.0)), flatten_outputs(3.0)
        (([1.0, 2.0], True), ([3.0], False))
    """
    if isinstance(out, tuple | list):
        return list(out), True
    return [out], False


def unflatten_outputs(values: list[Any], was_tuple: bool) -> Any:
    """Undo :func:`flatten_outputs`.

    Example:
        >>> from tinyjax.core import unflatten_outputs
        >>> unflatten_outputs([1.0, 2.0], True), unflatten_outputs([3.0], False)
        ((1.0, 2.0), 3.0)
    """
    return tuple(values) if was_tuple else values[0]


# Tracer's operators apply primitives defined on top of this module.
from tinyjax import primitives as _ops  # noqa: E402
