"""Staging: record a function's primitives into a small program instead of running them.

:class:`StagingTrace` boxes abstract inputs (shape and dtype only) and appends one
:class:`Equation` per primitive applied to them. Values from outside (closed-over arrays,
tracers of outer transforms) become the program's constants. The result, a :class:`Program`,
prints like a jaxpr and can be replayed through the interpreter stack with
:func:`eval_program`. ``jit`` compiles programs; ``linearize`` stages the tangent half of a
jvp into one, the linear program that ``grad`` transposes.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tinyjax.core import (
    Primitive,
    ShapedArray,
    Trace,
    Tracer,
    aval_of,
    flatten_outputs,
    new_trace,
    unflatten_outputs,
)


@dataclass(frozen=True, eq=False)
class Var:
    """A named value in a program, known only by its shape and dtype.

    Example:
        >>> import numpy as np
        >>> from tinyjax.core import ShapedArray
        >>> from tinyjax.ir import Var
        >>> print(Var(ShapedArray((3,), np.dtype("float32"))).aval)
        f32[3]
    """

    aval: ShapedArray


@dataclass(frozen=True)
class Equation:
    """One primitive applied to program variables: ``out = primitive[params] inputs``.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> eqn = tj.make_program(tj.sin, np.float32(1.0)).equations[0]
        >>> eqn.primitive, eqn.params
        (sin, {})
    """

    primitive: Primitive
    inputs: tuple[Var, ...]
    params: dict[str, Any]
    out: Var


@dataclass(frozen=True)
class Program:
    """A straight-line program over the primitives: tinyjax's jaxpr.

    ``constvars`` hold ``consts`` (arrays, or tracers of outer transforms); ``returns_tuple``
    says whether the staged function returned a tuple or one array.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> print(tj.make_program(lambda x: tj.sin(tj.mul(x, x)), np.ones(3, np.float32)))
        { lambda ; a:f32[3]. let
            b:f32[3] = mul a a
            c:f32[3] = sin b
          in (c) }
    """

    constvars: tuple[Var, ...]
    consts: tuple[Any, ...]
    inputs: tuple[Var, ...]
    equations: tuple[Equation, ...]
    outputs: tuple[Var, ...]
    returns_tuple: bool = False

    def __str__(self) -> str:
        names: dict[Var, str] = {}
        fresh = _fresh_names()

        def declare(var: Var) -> str:
            names[var] = next(fresh)
            return f"{names[var]}:{var.aval}"

        head = " ".join(map(declare, self.constvars)) + " ; " + " ".join(map(declare, self.inputs))
        lines = [f"{{ lambda {head.strip()}. let"]
        for eqn in self.equations:
            params = ",".join(f"{k}={v}" for k, v in eqn.params.items())
            call = eqn.primitive.name + (f"[{params}]" if params else "")
            args = " ".join(names[var] for var in eqn.inputs)
            lines.append(f"    {declare(eqn.out)} = {call} {args}")
        lines.append(f"  in ({', '.join(names[var] for var in self.outputs)}) }}")
        return "\n".join(lines)


def _fresh_names() -> Iterator[str]:
    # a, b, ..., z, ba, bb, ...: the naming a reader of jaxprs is used to.
    for length in itertools.count(1):
        for letters in itertools.product(string.ascii_lowercase, repeat=length):
            if length == 1 or letters[0] != "a":
                yield "".join(letters)


class StagingTracer(Tracer):
    """A program variable standing in for a value during staging.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> _ = tj.make_program(lambda x: print(x) or x, np.ones(2, np.float32))
        StagingTracer(f32[2])
    """

    def __init__(self, trace: Trace, var: Var) -> None:
        self.trace, self.var = trace, var

    @property
    def aval(self) -> ShapedArray:
        """The variable's shape and dtype."""
        return self.var.aval


@dataclass
class _Recording:
    equations: list[Equation] = field(default_factory=list)
    # Keyed by id, holding the value too, so that an id is not reused while recording.
    consts: dict[int, tuple[Var, Any]] = field(default_factory=dict)


class StagingTrace(Trace):
    """Records primitives applied to its tracers as equations of a program.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> from tinyjax.core import aval_of, new_trace
        >>> from tinyjax.ir import StagingTrace
        >>> with new_trace(StagingTrace) as trace:
        ...     x = trace.new_input(aval_of(np.float32(1.0)))
        ...     program = trace.build([x], [tj.exp(x)])
        >>> len(program.equations)
        1
    """

    name = "jit"

    def __init__(self, level: int, name: str = "jit") -> None:
        super().__init__(level)
        self.name = name
        self._recording = _Recording()

    def new_input(self, aval: ShapedArray) -> StagingTracer:
        """A tracer for a new program input."""
        return StagingTracer(self, Var(aval))

    def pure(self, x: Any) -> StagingTracer:
        """A value from outside the program becomes one of its constants."""
        var, _ = self._recording.consts.setdefault(id(x), (Var(aval_of(x)), x))
        return StagingTracer(self, var)

    def process(self, primitive: Primitive, tracers: list[Any], params: dict[str, Any]) -> Any:
        """Append an equation; the output's shape comes from the primitive's shape rule."""
        out = Var(primitive.shape_rule(*(t.aval for t in tracers), **params))
        eqn = Equation(primitive, tuple(t.var for t in tracers), params, out)
        self._recording.equations.append(eqn)
        return StagingTracer(self, out)

    def build(
        self, inputs: list[StagingTracer], outputs: list[Any], returns_tuple: bool = False
    ) -> Program:
        """The program from ``inputs`` to ``outputs`` recorded so far."""
        out_vars = tuple(self.lift(out).var for out in outputs)
        pairs = list(self._recording.consts.values())
        return Program(
            tuple(v for v, _ in pairs),
            tuple(c for _, c in pairs),
            tuple(t.var for t in inputs),
            tuple(self._recording.equations),
            out_vars,
            returns_tuple,
        )


def make_program(f: Callable[..., Any], *args: Any) -> Program:
    """Stage ``f`` into a :class:`Program`, given example arguments or their ShapedArrays.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> xs = np.ones((2, 3), np.float32)
        >>> print(tj.make_program(lambda x: tj.reduce_sum(tj.exp(x), axes=0), xs))
        { lambda ; a:f32[2,3]. let
            b:f32[2,3] = exp a
            c:f32[3] = reduce_sum[axes=(0,)] b
          in (c) }
    """
    avals = [a if isinstance(a, ShapedArray) else aval_of(a) for a in args]
    with new_trace(StagingTrace) as trace:
        inputs = [trace.new_input(aval) for aval in avals]
        outs, was_tuple = flatten_outputs(f(*inputs))
        return trace.build(inputs, outs, was_tuple)


def eval_program(program: Program, *args: Any) -> Any:
    """Run ``program`` on ``args`` by binding its primitives: any active transform sees them.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> program = tj.make_program(lambda x: tj.mul(x, x), np.float32(1.0))
        >>> tj.eval_program(program, np.float32(3.0))
        np.float32(9.0)
        >>> tj.grad(lambda x: tj.eval_program(program, x))(np.float32(3.0))
        np.float32(6.0)
    """
    env = dict(zip(program.constvars, program.consts, strict=True))
    env.update(zip(program.inputs, args, strict=True))
    for eqn in program.equations:
        env[eqn.out] = eqn.primitive.bind(*(env[var] for var in eqn.inputs), **eqn.params)
    return unflatten_outputs([env[var] for var in program.outputs], program.returns_tuple)
