"""Reverse mode as JAX does it: linearize with jvp and partial evaluation, then transpose.

:func:`linearize_program` runs :func:`~tinyjax.forward.jvp` with concrete primals and with
tangents that are inputs of a :class:`~tinyjax.ir.StagingTrace` beneath it. Every primal
operation has known operands and is evaluated at once; every tangent operation depends on
an unknown tangent and is staged. That split is partial evaluation, and what it stages is
the linear program ``tangents -> output tangent``, with primal results as its constants.

:func:`transpose_program` runs that program backwards, turning output cotangents into input
cotangents with one transpose rule per linear primitive; :func:`vjp` and :func:`grad` are
thin wrappers. Each rule binds primitives, so the backward pass itself can be traced:
``grad(grad(f))``, ``jit(grad(f))``, ``vmap(grad(f))``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyjax import primitives as ops
from tinyjax.core import (
    Primitive,
    ShapedArray,
    as_value,
    aval_of,
    flatten_outputs,
    new_trace,
    rule_for,
    zeros_like,
)
from tinyjax.errors import GradOutputError
from tinyjax.forward import jvp
from tinyjax.ir import Program, StagingTrace, Var, eval_program


def linearize_program(f: Callable[..., Any], *primals: Any) -> tuple[Any, Program]:
    """``f(*primals)`` and the linear program mapping input tangents to output tangents.

    Example:
        >>> import tinyjax as tj
        >>> out, program = tj.linearize_program(lambda x: tj.mul(x, tj.sin(x)), 2.0)
        >>> print(program)
        { lambda a:f32[] b:f32[] c:f32[] ; d:f32[]. let
            e:f32[] = mul d a
            f:f32[] = mul d b
            g:f32[] = mul c e
            h:f32[] = add f g
          in (h) }
    """
    primals = tuple(map(as_value, primals))
    with new_trace(StagingTrace, "linearize") as staging:
        tangents = [staging.new_input(aval_of(p)) for p in primals]
        primals_out, tangents_out = jvp(f, primals, tangents)
        flat, was_tuple = flatten_outputs(tangents_out)
        return primals_out, staging.build(tangents, flat, was_tuple)


def linearize(f: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[..., Any]]:
    """``f(*primals)`` and its linear approximation there, as a function of input tangents.

    Example:
        >>> import tinyjax as tj
        >>> out, f_jvp = tj.linearize(tj.sin, 0.0)
        >>> f_jvp(3.0)
        np.float32(3.0)
    """
    out, program = linearize_program(f, *primals)
    return out, lambda *tangents: eval_program(program, *map(as_value, tangents))


@dataclass(frozen=True)
class LinearInput:
    """Marks, for a transpose rule, an operand the program is linear in (its value unknown).

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> from tinyjax.reverse import TRANSPOSE_RULES, LinearInput
        >>> x = LinearInput(tj.core.aval_of(np.float32(0.0)))
        >>> TRANSPOSE_RULES[tj.primitives.mul_p](np.float32(1.0), np.float32(3.0), x)
        (None, np.float32(3.0))
    """

    aval: ShapedArray


def transpose_program(program: Program, *cotangents: Any) -> list[Any]:
    """Run a linear program backwards: output cotangents in, one cotangent per input out.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> _, program = tj.linearize_program(lambda x, y: tj.mul(x, y), 2.0, 5.0)
        >>> tj.transpose_program(program, np.float32(1.0))
        [np.float32(5.0), np.float32(2.0)]
    """
    known = dict(zip(program.constvars, program.consts, strict=True))
    cts: dict[Var, Any] = {}

    def accumulate(var: Var, ct: Any) -> None:
        if var not in known:  # a constant gets no cotangent
            cts[var] = ops.add(cts[var], ct) if var in cts else ct

    for var, ct in zip(program.outputs, cotangents, strict=True):
        accumulate(var, as_value(ct))
    for eqn in reversed(program.equations):
        if eqn.out not in cts:
            continue  # nothing flows back from here: its cotangent is zero
        rule = rule_for(
            TRANSPOSE_RULES, eqn.primitive, "transpose", "tinyjax.reverse.TRANSPOSE_RULES"
        )
        operands = [known[var] if var in known else LinearInput(var.aval) for var in eqn.inputs]
        for var, ct in zip(
            eqn.inputs, rule(cts.pop(eqn.out), *operands, **eqn.params), strict=True
        ):
            if ct is not None:
                accumulate(var, ct)
    return [
        cts[var] if var in cts else np.zeros(var.aval.shape, var.aval.dtype)
        for var in program.inputs
    ]


def vjp(f: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[..., tuple[Any, ...]]]:
    """``f(*primals)`` and the function mapping output cotangents to input cotangents.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> out, f_vjp = tj.vjp(tj.mul, 2.0, 5.0)
        >>> out, f_vjp(np.float32(1.0))
        (np.float32(10.0), (np.float32(5.0), np.float32(2.0)))
    """
    out, program = linearize_program(f, *primals)
    return out, lambda *cotangents: tuple(transpose_program(program, *cotangents))


def grad(f: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    """The gradient of a real scalar function with respect to argument ``argnums``.

    Example:
        >>> import tinyjax as tj
        >>> tj.grad(lambda x: tj.mul(x, tj.sin(x)))(0.0)
        np.float32(0.0)
        >>> tj.grad(tj.grad(tj.cos))(0.0)
        np.float32(-1.0)
    """

    def gradient(*args: Any) -> Any:
        args = tuple(map(as_value, args))

        def f_of_one(x: Any) -> Any:
            return f(*args[:argnums], x, *args[argnums + 1 :])

        out, f_vjp = vjp(f_of_one, args[argnums])
        aval = None if isinstance(out, tuple | list) else aval_of(out)
        if aval is None or aval.shape != () or aval.dtype.kind != "f":
            found = "a tuple" if aval is None else str(aval)
            raise GradOutputError(
                f"grad needs a function with a real scalar output, got {found}; sum the output "
                "(tinyjax.reduce_sum) or use tinyjax.vjp for a non-scalar output."
            )
        return f_vjp(np.ones((), aval.dtype))[0]

    return gradient


def _only_linear(*operands):
    return [isinstance(x, LinearInput) for x in operands]


def _mul(ct, x, y):
    # The program is linear: exactly one operand depends on the inputs.
    return (ops.mul(ct, y), None) if isinstance(x, LinearInput) else (None, ops.mul(x, ct))


def _select(ct, pred, on_true, on_false):
    zeros = zeros_like(ct)
    true_linear, false_linear = _only_linear(on_true, on_false)
    on_true_ct = ops.select(pred, ct, zeros) if true_linear else None
    return None, on_true_ct, ops.select(pred, zeros, ct) if false_linear else None


def _reduce_sum(ct, x, *, axes):
    kept = tuple(i for i in range(x.aval.ndim) if i not in axes)
    return (ops.broadcast(ct, x.aval.shape, kept),)


def _broadcast(ct, x, *, shape, axes):
    return (ops.reduce_sum(ct, tuple(i for i in range(len(shape)) if i not in axes)),)


def _transpose(ct, x, *, perm):
    return (ops.transpose(ct, tuple(int(i) for i in np.argsort(perm))),)


# The transpose rule of each linear primitive: ``rule(cotangent, *operands, **params)``
# returns one cotangent per operand (``None`` for one that is not a :class:`LinearInput`).
TRANSPOSE_RULES: dict[Primitive, Callable[..., tuple[Any, ...]]] = {
    ops.add_p: lambda ct, x, y: (ct, ct),
    ops.neg_p: lambda ct, x: (ops.neg(ct),),
    ops.mul_p: _mul,
    ops.select_p: _select,
    ops.reduce_sum_p: _reduce_sum,
    ops.broadcast_p: _broadcast,
    ops.transpose_p: _transpose,
}
