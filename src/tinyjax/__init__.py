"""tinyjax: JAX's transforms built from scratch, small enough to read in one sitting.

Programs are written with the primitives of :mod:`tinyjax.primitives` (``sin``, ``mul``,
``reduce_sum``...). The transforms :func:`jvp`, :func:`vmap`, :func:`jit`, :func:`grad`
(with :func:`vjp` and :func:`linearize`) are interpreters on one stack, so they nest in any
order, and the test suite checks every pair of them against JAX on random programs.

Example:
    >>> import numpy as np
    >>> import tinyjax as tj
    >>> def loss(w, x):
    ...     return tj.reduce_sum(tj.sin(tj.mul(w, x)))
    >>> w, xs = np.ones(3, np.float32), np.ones((4, 3), np.float32)
    >>> per_example = tj.jit(tj.vmap(tj.grad(loss), in_axes=(None, 0)))(w, xs)
    >>> per_example.shape
    (4, 3)
"""

from tinyjax import batching, core, errors, forward, ir, lowering, primitives, registry, reverse
from tinyjax.batching import vmap
from tinyjax.errors import (
    ConcretizationError,
    EscapedTracerError,
    GradOutputError,
    InAxesError,
    MissingRuleError,
    ShapeError,
    TinyJaxError,
)
from tinyjax.forward import jvp
from tinyjax.ir import Program, eval_program, make_program
from tinyjax.lowering import Jitted, jit, lower
from tinyjax.primitives import (
    add,
    broadcast,
    cos,
    exp,
    greater,
    log,
    maximum,
    mul,
    neg,
    reduce_sum,
    select,
    sin,
    transpose,
)
from tinyjax.reverse import grad, linearize, linearize_program, transpose_program, vjp

__all__ = [
    "ConcretizationError",
    "EscapedTracerError",
    "GradOutputError",
    "InAxesError",
    "Jitted",
    "MissingRuleError",
    "Program",
    "ShapeError",
    "TinyJaxError",
    "add",
    "batching",
    "broadcast",
    "core",
    "cos",
    "errors",
    "eval_program",
    "exp",
    "forward",
    "grad",
    "greater",
    "ir",
    "jit",
    "jvp",
    "linearize",
    "linearize_program",
    "log",
    "lower",
    "lowering",
    "make_program",
    "maximum",
    "mul",
    "neg",
    "primitives",
    "reduce_sum",
    "registry",
    "reverse",
    "select",
    "sin",
    "transpose",
    "transpose_program",
    "vjp",
    "vmap",
]
