"""Forward mode: push a tangent along with every value, one jvp rule per primitive.

A :class:`JVPTracer` boxes a primal value and its tangent (the directional derivative along
the input tangents). Each rule computes the primitive's output and its tangent from the
operands' primals and tangents, using tinyjax primitives only, so that a rule's own
operations can be traced again by an outer transform (``jvp(grad(f))``, ``jit(jvp(f))``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tinyjax import primitives as ops
from tinyjax.core import (
    Primitive,
    Trace,
    Tracer,
    as_value,
    aval_of,
    flatten_outputs,
    new_trace,
    rule_for,
    unflatten_outputs,
    zeros_like,
)
from tinyjax.errors import ShapeError


class JVPTracer(Tracer):
    """A value (``primal``) travelling with its ``tangent``.

    Example:
        >>> import tinyjax as tj
        >>> tj.jvp(lambda x: print(x) or x, (1.0,), (0.5,))[1]
        JVPTracer(f32[])
        np.float32(0.5)
    """

    def __init__(self, trace: Trace, primal: Any, tangent: Any) -> None:
        self.trace, self.primal, self.tangent = trace, primal, tangent

    @property
    def aval(self) -> Any:
        """The primal's shape and dtype."""
        return aval_of(self.primal)

    def __bool__(self) -> bool:
        # The primal is known, so Python control flow on it is fine under jvp.
        return bool(self.primal)


class JVPTrace(Trace):
    """Applies each primitive's jvp rule.

    Example:
        >>> import tinyjax as tj
        >>> from tinyjax.core import new_trace
        >>> from tinyjax.forward import JVPTrace, JVPTracer
        >>> with new_trace(JVPTrace) as trace:
        ...     y = tj.sin(JVPTracer(trace, 0.0, 2.0))
        >>> y.primal, y.tangent
        (np.float32(0.0), np.float32(2.0))
    """

    name = "jvp"

    def pure(self, x: Any) -> JVPTracer:
        """A constant has a zero tangent."""
        return JVPTracer(self, x, zeros_like(x))

    def process(self, primitive: Primitive, tracers: list[Any], params: dict[str, Any]) -> Any:
        """Run the jvp rule on the primals and tangents."""
        rule = rule_for(JVP_RULES, primitive, "jvp", "tinyjax.forward.JVP_RULES")
        primal, tangent = rule([t.primal for t in tracers], [t.tangent for t in tracers], **params)
        return JVPTracer(self, primal, tangent)


def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """Evaluate ``f`` at ``primals`` and its derivative along ``tangents``.

    Args:
        f: a function of arrays returning an array or a tuple of arrays.
        primals: the point, one array per argument of ``f``.
        tangents: the direction, one array per primal, of the same shape and dtype.

    Returns:
        ``(f(*primals), tangent_out)``, the output and its directional derivative, shaped alike.

    Example:
        >>> import tinyjax as tj
        >>> tj.jvp(lambda x: tj.mul(x, tj.sin(x)), (0.0,), (1.0,))
        (np.float32(0.0), np.float32(0.0))
    """
    primals, tangents = list(map(as_value, primals)), list(map(as_value, tangents))
    if len(primals) != len(tangents):
        raise ShapeError(
            f"jvp got {len(primals)} primals and {len(tangents)} tangents; give one "
            "tangent per primal."
        )
    for primal, tangent in zip(primals, tangents, strict=True):
        if aval_of(primal) != aval_of(tangent):
            raise ShapeError(
                f"jvp got a tangent {aval_of(tangent)} for a primal "
                f"{aval_of(primal)}; give each tangent its primal's shape and dtype."
            )
    with new_trace(JVPTrace) as trace:
        outs, was_tuple = flatten_outputs(
            f(*map(JVPTracer, [trace] * len(primals), primals, tangents))
        )
        outs = [trace.lift(out) for out in outs]
    primals_out = unflatten_outputs([out.primal for out in outs], was_tuple)
    return primals_out, unflatten_outputs([out.tangent for out in outs], was_tuple)


def _linear(primitive: Primitive) -> Callable[..., tuple[Any, Any]]:
    # A linear primitive's tangent is the same primitive applied to the tangents.
    def rule(primals: list[Any], tangents: list[Any], **params: Any) -> tuple[Any, Any]:
        return primitive.bind(*primals, **params), primitive.bind(*tangents, **params)

    return rule


def _mul(primals: list[Any], tangents: list[Any]) -> tuple[Any, Any]:
    (x, y), (tx, ty) = primals, tangents
    return ops.mul(x, y), ops.add(ops.mul(tx, y), ops.mul(x, ty))


def _sin(primals: list[Any], tangents: list[Any]) -> tuple[Any, Any]:
    return ops.sin(primals[0]), ops.mul(tangents[0], ops.cos(primals[0]))


def _cos(primals: list[Any], tangents: list[Any]) -> tuple[Any, Any]:
    return ops.cos(primals[0]), ops.mul(tangents[0], ops.neg(ops.sin(primals[0])))


def _exp(primals: list[Any], tangents: list[Any]) -> tuple[Any, Any]:
    y = ops.exp(primals[0])
    return y, ops.mul(tangents[0], y)


def _log(primals: list[Any], tangents: list[Any]) -> tuple[Any, Any]:
    y = ops.log(primals[0])
    # There is no division primitive: 1/x is exp(-log x), from the log already computed.
    return y, ops.mul(tangents[0], ops.exp(ops.neg(y)))


def _max(primals: list[Any], tangents: list[Any]) -> tuple[Any, Any]:
    (x, y), (tx, ty) = primals, tangents
    # At a tie each side gets half the tangent, as in JAX, so both agree there too.
    tie = ops.mul(0.5, ops.add(tx, ty))
    tangent = ops.select(ops.greater(x, y), tx, ops.select(ops.greater(y, x), ty, tie))
    return ops.maximum(x, y), tangent


def _greater(primals: list[Any], tangents: list[Any]) -> tuple[Any, Any]:
    out = ops.greater(*primals)
    return out, zeros_like(out)


def _select(primals: list[Any], tangents: list[Any]) -> tuple[Any, Any]:
    pred = primals[0]
    return ops.select(*primals), ops.select(pred, tangents[1], tangents[2])


# The jvp rule of each primitive: ``rule(primals, tangents, **params) -> (out, tangent)``.
JVP_RULES: dict[Primitive, Callable[..., tuple[Any, Any]]] = {
    ops.add_p: _linear(ops.add_p),
    ops.mul_p: _mul,
    ops.neg_p: _linear(ops.neg_p),
    ops.sin_p: _sin,
    ops.cos_p: _cos,
    ops.exp_p: _exp,
    ops.log_p: _log,
    ops.max_p: _max,
    ops.greater_p: _greater,
    ops.select_p: _select,
    ops.reduce_sum_p: _linear(ops.reduce_sum_p),
    ops.broadcast_p: _linear(ops.broadcast_p),
    ops.transpose_p: _linear(ops.transpose_p),
}
