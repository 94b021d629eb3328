"""Unit tests of tinyjax: each primitive, each transform, their nesting, and each misuse error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import tinyjax as tj
from tinyjax.core import Primitive
from tinyjax.primitives import PRIMITIVES

X = np.array([0.3, -1.2, 2.0], np.float32)
Y = np.array([1.5, 0.4, -0.7], np.float32)
M = np.arange(6, dtype=np.float32).reshape(2, 3) / 6


def close(ours, theirs, tol=1e-5):
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=tol, atol=tol)


def tanh_primitive():
    return Primitive("tanh", np.tanh, lambda x: x)


# --- evaluation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs", "args"),
    [
        (tj.add, lax.add, (X, Y)),
        (tj.mul, lax.mul, (X, Y)),
        (tj.neg, lax.neg, (X,)),
        (tj.sin, lax.sin, (X,)),
        (tj.cos, lax.cos, (X,)),
        (tj.exp, lax.exp, (X,)),
        (tj.log, lax.log, (np.abs(X),)),
        (tj.maximum, lax.max, (X, Y)),
        (tj.greater, lax.gt, (X, Y)),
        (
            lambda x, y: tj.select(tj.greater(x, y), x, y),
            lambda x, y: lax.select(x > y, x, y),
            (X, Y),
        ),
        (lambda m: tj.reduce_sum(m, axes=1), lambda m: lax.reduce_sum(m, (1,)), (M,)),
        (
            lambda m: tj.broadcast(m, (2, 4, 3), (0, 2)),
            lambda m: lax.broadcast_in_dim(m, (2, 4, 3), (0, 2)),
            (M,),
        ),
        (tj.transpose, lambda m: lax.transpose(m, (1, 0)), (M,)),
    ],
)
def test_each_primitive_evaluates_like_lax(ours, theirs, args):
    close(ours(*args), theirs(*args))


def test_python_numbers_take_the_other_operands_shape_and_dtype():
    assert tj.mul(X, 2).dtype == np.float32
    close(2.0 * tj.jit(lambda x: x - 1.0)(X), 2 * (X - 1))


# --- jvp -------------------------------------------------------------------------------------


def test_jvp_matches_jax_on_a_composite_function():
    def f(ops, x, y):
        return ops.sin(ops.mul(x, ops.exp(y)))

    tx, ty = np.ones(3, np.float32), Y
    ours = tj.jvp(lambda x, y: f(tj, x, y), (X, Y), (tx, ty))
    theirs = jax.jvp(lambda x, y: f(lax, x, y), (X, Y), (tx, ty))
    close(ours[0], theirs[0])
    close(ours[1], theirs[1])


def test_max_splits_the_tangent_at_a_tie_as_jax_does():
    x = np.float32(1.0)
    ours = tj.jvp(lambda a, b: tj.maximum(a, b), (x, x), (np.float32(1.0), np.float32(3.0)))
    theirs = jax.jvp(lax.max, (x, x), (np.float32(1.0), np.float32(3.0)))
    assert ours[1] == theirs[1] == 2.0


def test_python_control_flow_on_a_jvp_tracer_reads_the_primal():
    def relu(x):
        return x if x > 0 else tj.neg(x)

    assert tj.jvp(relu, (-2.0,), (1.0,)) == (2.0, -1.0)


def test_jvp_of_a_tuple_output_gives_a_tuple_of_tangents():
    primals, tangents = tj.jvp(lambda x: (tj.sin(x), tj.cos(x)), (0.0,), (1.0,))
    assert primals == (0.0, 1.0)
    assert tangents == (1.0, 0.0)


# --- vmap ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("v", "in_axes"),
    [(Y, (0, None)), (Y[:2], (1, None)), (np.stack([Y[:2]] * 3), (-1, 0))],
)
def test_vmap_follows_in_axes_as_jax_does(v, in_axes):
    def f(ops, m, v):
        return ops.mul(ops.sin(m), v)

    ours = tj.vmap(lambda m, v: f(tj, m, v), in_axes)(M, v)
    theirs = jax.vmap(lambda m, v: f(lax, m, v), in_axes)(M, v)
    close(ours, theirs)


def test_vmap_moves_the_batch_axis_through_reduce_sum_broadcast_and_transpose():
    def ours(m):
        grown = tj.broadcast(m, (4, *m.shape), (1, 2))
        return tj.reduce_sum(tj.transpose(grown, (2, 0, 1)), axes=1)

    def theirs(m):
        grown = lax.broadcast_in_dim(m, (4, *m.shape), (1, 2))
        return lax.reduce_sum(lax.transpose(grown, (2, 0, 1)), (1,))

    cube = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    close(tj.vmap(ours, in_axes=2)(cube), jax.vmap(theirs, in_axes=2)(cube))


def test_vmap_of_a_constant_output_repeats_it_per_example():
    out = tj.vmap(lambda x: np.float32(7.0))(X)
    close(out, [7.0, 7.0, 7.0])


def test_nested_vmap_maps_over_two_axes():
    close(tj.vmap(tj.vmap(tj.sin))(M), np.sin(M))


# --- jit -------------------------------------------------------------------------------------


def test_jit_caches_by_shape_and_dtype_and_counts_retraces():
    f = tj.jit(lambda x: tj.exp(tj.neg(x)))
    f(X)
    f(Y)
    assert f.trace_count == 1
    f(M)
    assert f.trace_count == 2
    f(M.astype(np.float16))
    assert f.trace_count == 3
    close(f(M), np.exp(-M))


def test_jit_program_prints_like_a_jaxpr_with_the_same_equations():
    program = tj.make_program(lambda x: tj.reduce_sum(tj.mul(tj.sin(x), x)), M)
    jaxpr = jax.make_jaxpr(lambda x: lax.reduce_sum(lax.mul(lax.sin(x), x), (0, 1)))(M)
    assert [e.primitive.name for e in program.equations] == ["sin", "mul", "reduce_sum"]
    assert [e.primitive.name for e in jaxpr.eqns] == ["sin", "mul", "reduce_sum"]
    assert str(program).splitlines()[0] == "{ lambda ; a:f32[2,3]. let"


def test_a_closed_over_array_becomes_a_constant_of_the_program():
    program = tj.make_program(lambda x: tj.mul(x, Y), X)
    assert program.consts == (Y,)
    assert str(program).startswith("{ lambda a:f32[3] ; b:f32[3]. let")


def test_jit_lowers_to_the_lax_operations_it_staged():
    program = tj.make_program(lambda x: tj.select(tj.greater(x, 0.0), x, 0.0), X)
    hlo = tj.lower(program).lower(X).as_text()
    assert "stablehlo.compare" in hlo and "stablehlo.select" in hlo


def test_jit_returns_a_tuple_for_a_tuple_output():
    out = tj.jit(lambda x: (tj.sin(x), tj.cos(x)))(X)
    assert isinstance(out, tuple) and len(out) == 2
    close(out[1], np.cos(X))


# --- reverse mode and composition --------------------------------------------------------------


def ours(x):
    return tj.reduce_sum(tj.mul(tj.sin(x), tj.exp(x)))


def theirs(x):
    return jnp.sum(jnp.sin(x) * jnp.exp(x))


def test_grad_matches_jax():
    close(tj.grad(ours)(X), jax.grad(theirs)(X))


def test_the_linear_program_holds_only_linear_primitives():
    _, program = tj.linearize_program(ours, X)
    linear = {"add", "mul", "neg", "select", "reduce_sum", "broadcast", "transpose"}
    assert {eqn.primitive.name for eqn in program.equations} <= linear
    assert "sin" not in str(program)


def test_grad_of_grad_is_the_second_derivative():
    close(tj.grad(tj.grad(tj.sin))(np.float32(0.7)), -np.sin(np.float32(0.7)))


def test_vmap_of_grad_gives_per_example_gradients():
    def loss(w, x):
        return tj.reduce_sum(tj.sin(tj.mul(w, x)))

    def jax_loss(w, x):
        return jnp.sum(jnp.sin(w * x))

    per_example = tj.vmap(tj.grad(loss), in_axes=(None, 0))(X, M)
    expected = jax.vmap(jax.grad(jax_loss), in_axes=(None, 0))(X, M)
    close(per_example, expected)


def test_jit_of_grad_stages_forward_and_backward_into_one_program():
    jitted = tj.jit(tj.grad(ours))
    close(jitted(X), jax.grad(theirs)(X))
    names = [eqn.primitive.name for eqn in jitted.program(X).equations]
    assert "sin" in names and "cos" in names


def test_jvp_of_grad_is_a_hessian_vector_product():
    hvp = tj.jvp(tj.grad(ours), (X,), (Y,))[1]
    close(hvp, jax.jvp(jax.grad(theirs), (X,), (Y,))[1])


def test_grad_of_jit_and_of_vmap_see_through_them():
    close(tj.grad(tj.jit(ours))(X), jax.grad(theirs)(X))
    summed = tj.grad(lambda m: tj.reduce_sum(tj.vmap(ours)(m)))(M)
    close(summed, jax.grad(lambda m: jnp.sum(jax.vmap(theirs)(m)))(M))


def test_an_input_the_output_ignores_gets_a_zero_gradient():
    assert tj.grad(lambda x, y: tj.sin(x), argnums=1)(1.0, 2.0) == 0.0
    assert tj.grad(lambda x: np.float32(3.0))(1.0) == 0.0


def test_vjp_gives_one_cotangent_per_input():
    out, f_vjp = tj.vjp(lambda x, y: tj.mul(tj.sin(x), y), X, Y)
    cts = f_vjp(np.ones(3, np.float32))
    close(cts[0], np.cos(X) * Y)
    close(cts[1], np.sin(X))


# --- errors -----------------------------------------------------------------------------------


def test_python_if_under_jit_names_select():
    def relu(x):
        return x if x > 0 else tj.neg(x)

    with pytest.raises(tj.ConcretizationError, match=r"tinyjax\.select\(pred, on_true"):
        tj.jit(relu)(np.float32(1.0))


def test_python_if_under_vmap_says_why_and_names_select():
    with pytest.raises(tj.ConcretizationError, match="different value in each example"):
        tj.vmap(lambda x: x if x > 0 else x)(X)


def test_a_missing_jvp_rule_names_the_primitive_and_the_transform():
    with pytest.raises(tj.MissingRuleError, match="jvp has no rule for the primitive 'tanh'"):
        tj.jvp(tanh_primitive().bind, (1.0,), (1.0,))


def test_a_missing_batching_rule_names_the_primitive_and_the_transform():
    with pytest.raises(tj.MissingRuleError, match=r"vmap .* 'tanh'.*\n.*BATCH_RULES\[tanh_p\]"):
        tj.vmap(tanh_primitive().bind)(X)


def test_a_missing_lowering_names_the_primitive():
    with pytest.raises(tj.MissingRuleError, match=r"jit \(lowering to XLA\) .* 'tanh'"):
        tj.jit(tanh_primitive().bind)(X)


def test_a_missing_transpose_rule_names_the_primitive():
    double_p = Primitive("double", lambda x: 2 * x, lambda x: x)
    tj.forward.JVP_RULES[double_p] = lambda p, t: (double_p.bind(*p), double_p.bind(*t))
    try:
        with pytest.raises(tj.MissingRuleError, match="transpose has no rule for .*'double'"):
            tj.grad(double_p.bind)(1.0)
    finally:
        del tj.forward.JVP_RULES[double_p]


def test_in_axes_of_the_wrong_length():
    with pytest.raises(tj.InAxesError, match=r"in_axes=\(0, 0\) with 2 entries for 1 arguments"):
        tj.vmap(tj.sin, in_axes=(0, 0))(X)


def test_in_axes_out_of_range():
    with pytest.raises(tj.InAxesError, match=r"in_axes\[0\]=1 .* f32\[3\]"):
        tj.vmap(tj.sin, in_axes=1)(X)


def test_in_axes_of_different_sizes():
    with pytest.raises(tj.InAxesError, match="argument 0 has 3, argument 1 has 2"):
        tj.vmap(tj.add)(X, Y[:2])


def test_in_axes_all_none():
    with pytest.raises(tj.InAxesError, match="at least one batched argument"):
        tj.vmap(tj.sin, in_axes=None)(X)


def test_shape_errors_name_the_operands():
    with pytest.raises(tj.ShapeError, match=r"f32\[3\] and f32\[2,3\]"):
        tj.jit(tj.add)(X, M)


def test_grad_of_a_non_scalar_says_what_to_do():
    with pytest.raises(tj.GradOutputError, match="reduce_sum"):
        tj.grad(tj.sin)(X)


def test_an_escaped_tracer_is_caught():
    saved = []
    tj.jvp(lambda x: saved.append(x) or x, (1.0,), (1.0,))
    with pytest.raises(tj.EscapedTracerError):
        tj.sin(saved[0])


# --- the registry ------------------------------------------------------------------------------


def test_every_primitive_has_every_rule_and_the_linear_ones_transpose():
    table = tj.registry.rule_table()
    assert list(table) == [p.name for p in PRIMITIVES]
    assert all(
        rules["eval"] and rules["jvp"] and rules["batch"] and rules["lowering"]
        for rules in table.values()
    )
    transposable = {name for name, rules in table.items() if rules["transpose"]}
    assert transposable == {"add", "mul", "neg", "select", "reduce_sum", "broadcast", "transpose"}
