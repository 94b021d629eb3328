"""jit: stage a function into a program once per input signature, and compile it with XLA.

Compiling is replaying: :func:`lower` walks the program and calls the matching ``jax.lax``
function for each equation, inside ``jax.jit``, so XLA compiles exactly the staged
primitives. :class:`Jitted` caches one compiled program per tuple of input shapes and
dtypes and counts how often it had to trace. Called with tracers of an outer transform
(``grad(jit(f))``, ``vmap(jit(f))``), it replays its program through the interpreter stack
instead, so the outer transform sees every primitive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
from jax import lax

from tinyjax import primitives as ops
from tinyjax.core import (
    Primitive,
    ShapedArray,
    Tracer,
    as_value,
    aval_of,
    rule_for,
    unflatten_outputs,
)
from tinyjax.ir import Program, eval_program, make_program

# The ``jax.lax`` call that each primitive lowers to: ``rule(*operands, **params)``.
LOWERINGS: dict[Primitive, Callable[..., Any]] = {
    ops.add_p: lax.add,
    ops.mul_p: lax.mul,
    ops.neg_p: lax.neg,
    ops.sin_p: lax.sin,
    ops.cos_p: lax.cos,
    ops.exp_p: lax.exp,
    ops.log_p: lax.log,
    ops.max_p: lax.max,
    ops.greater_p: lax.gt,
    ops.select_p: lax.select,
    ops.reduce_sum_p: lambda x, *, axes: lax.reduce_sum(x, axes),
    ops.broadcast_p: lambda x, *, shape, axes: lax.broadcast_in_dim(x, shape, axes),
    ops.transpose_p: lambda x, *, perm: lax.transpose(x, perm),
}


def lower(program: Program) -> Callable[..., Any]:
    """A ``jax.jit`` function that replays ``program`` as ``jax.lax`` calls.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> program = tj.make_program(lambda x: tj.neg(tj.exp(x)), np.float32(0.0))
        >>> compiled = tj.lower(program)
        >>> print(compiled(np.float32(0.0))[0])
        -1.0
        >>> "stablehlo.exponential" in compiled.lower(np.float32(0.0)).as_text()
        True
    """

    def replay(*args: Any) -> list[Any]:
        env = dict(zip(program.constvars, program.consts, strict=True))
        env.update(zip(program.inputs, args, strict=True))
        for eqn in program.equations:
            lowering = rule_for(
                LOWERINGS, eqn.primitive, "jit (lowering to XLA)", "tinyjax.lowering.LOWERINGS"
            )
            env[eqn.out] = lowering(*(env[var] for var in eqn.inputs), **eqn.params)
        return [env[var] for var in program.outputs]

    return jax.jit(replay)


class Jitted:
    """A function compiled by XLA on its first call for each input signature.

    Attributes:
        fun: the Python function being compiled.
        trace_count: how many times ``fun`` was traced; a call with new input shapes or
            dtypes traces (and compiles) again, a repeated signature reuses the cache.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> f = tj.jit(lambda x: tj.mul(x, x))
        >>> _ = f(np.ones(3, np.float32)), f(np.zeros(3, np.float32))
        >>> f.trace_count
        1
        >>> _ = f(np.ones(4, np.float32))
        >>> f.trace_count
        2
    """

    def __init__(self, fun: Callable[..., Any]) -> None:
        self.fun = fun
        self.trace_count = 0
        self._programs: dict[tuple[ShapedArray, ...], Program] = {}
        self._compiled: dict[tuple[ShapedArray, ...], Callable[..., Any]] = {}

    def program(self, *args: Any) -> Program:
        """The staged program for arguments shaped like ``args`` (traced at most once).

        Example:
            >>> import numpy as np
            >>> import tinyjax as tj
            >>> print(tj.jit(tj.sin).program(np.float32(1.0)))
            { lambda ; a:f32[]. let
                b:f32[] = sin a
              in (b) }
        """
        key = tuple(aval_of(arg) for arg in args)
        if key not in self._programs:
            self.trace_count += 1
            self._programs[key] = make_program(self.fun, *key)
        return self._programs[key]

    def __call__(self, *args: Any) -> Any:
        """Run the compiled program, or replay it under an outer transform."""
        args = tuple(map(as_value, args))
        program = self.program(*args)
        if any(isinstance(value, Tracer) for value in (*args, *program.consts)):
            return eval_program(program, *args)
        key = tuple(aval_of(arg) for arg in args)
        if key not in self._compiled:
            self._compiled[key] = lower(program)
        return unflatten_outputs(self._compiled[key](*args), program.returns_tuple)


def jit(fun: Callable[..., Any]) -> Jitted:
    """Compile ``fun`` with XLA, once per input signature.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> f = tj.jit(lambda x, y: tj.add(tj.sin(x), y))
        >>> print(f(np.float32(0.0), np.float32(2.0)))
        2.0
    """
    return Jitted(fun)
