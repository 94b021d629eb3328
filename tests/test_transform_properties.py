import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from purenn import layers
from purenn.modules import MLP, BatchNorm, Dropout
from purenn.transform import transform, transform_with_state, without_apply_rng

SETTINGS = settings(max_examples=25, deadline=None)
# Every example compiles fresh jitted functions, so the jit-heavy properties get fewer.
JIT_SETTINGS = settings(max_examples=15, deadline=None)


@st.composite
def mlp_cases(draw):
    """An MLP configuration, an input batch and a seed."""
    in_size = draw(st.integers(1, 4))
    output_sizes = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))
    batch = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    x = jax.random.normal(jax.random.key(seed), (batch, in_size))
    return output_sizes, x, seed


def mlp_model(output_sizes):
    return transform(lambda x: MLP(output_sizes, jnp.tanh)(x))


def as_layer_list(params, output_sizes):
    names = ["mlp/linear"] + [f"mlp/linear_{i}" for i in range(1, len(output_sizes))]
    return [params[name] for name in names]


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for left, right in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(left, right, rtol=rtol, atol=atol)


@SETTINGS
@given(mlp_cases())
def test_init_then_apply_is_deterministic(case):
    output_sizes, x, seed = case
    model = mlp_model(output_sizes)
    first, second = model.init(jax.random.key(seed), x), model.init(jax.random.key(seed), x)
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.apply(first, None, x), model.apply(second, None, x))


@SETTINGS
@given(mlp_cases())
def test_apply_is_pure_and_leaks_no_tracers(case):
    output_sizes, x, seed = case
    model = mlp_model(output_sizes)
    params = model.init(jax.random.key(seed), x)
    with jax.checking_leaks():
        eager = model.apply(params, None, x)
        jitted = jax.jit(model.apply)(params, None, x)
        again = model.apply(params, None, x)
        jax.jit(model.init)(jax.random.key(seed), x)
    np.testing.assert_array_equal(eager, again)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-6)
    assert isinstance(again, jax.Array) and not isinstance(again, jax.core.Tracer)


@SETTINGS
@given(mlp_cases())
def test_apply_matches_the_untransformed_mlp(case):
    output_sizes, x, seed = case
    params = mlp_model(output_sizes).init(jax.random.key(seed), x)
    expected = layers.mlp_apply(as_layer_list(params, output_sizes), x, activation=jnp.tanh)
    np.testing.assert_allclose(
        mlp_model(output_sizes).apply(params, None, x), expected, rtol=1e-5, atol=1e-6
    )


@JIT_SETTINGS
@given(mlp_cases())
def test_jit_vmap_and_grad_of_apply_match_untransformed_results(case):
    output_sizes, x, seed = case
    model = without_apply_rng(mlp_model(output_sizes))
    params = model.init(jax.random.key(seed), x)

    def untransformed(p, inputs):
        return layers.mlp_apply(as_layer_list(p, output_sizes), inputs, activation=jnp.tanh)

    np.testing.assert_allclose(
        jax.jit(model.apply)(params, x), untransformed(params, x), rtol=1e-5, atol=1e-6
    )

    per_example = jax.vmap(model.apply, in_axes=(None, 0))(params, x)
    np.testing.assert_allclose(per_example, untransformed(params, x), rtol=1e-5, atol=1e-6)

    def loss(p, apply):
        return jnp.sum(apply(p, x) ** 2)

    grads = jax.grad(loss)(params, model.apply)
    expected = jax.grad(loss)(params, untransformed)
    assert_trees_close(grads, expected)
    assert_trees_close(jax.jit(jax.grad(loss), static_argnums=1)(params, model.apply), expected)


@SETTINGS
@given(mlp_cases(), st.integers(0, 2**31 - 1), st.integers(1, 6))
def test_parameter_names_are_stable_across_calls(case, other_seed, other_batch):
    output_sizes, x, seed = case
    model = mlp_model(output_sizes)
    params = model.init(jax.random.key(seed), x)
    other_x = jnp.ones((other_batch, x.shape[1]))
    other = model.init(jax.random.key(other_seed), other_x)
    expected = ["mlp/linear"] + [f"mlp/linear_{i}" for i in range(1, len(output_sizes))]
    assert sorted(params) == sorted(other) == expected
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, other)
    assert all(sorted(entries) == ["b", "w"] for entries in params.values())


@JIT_SETTINGS
@given(
    st.integers(2, 8),
    st.integers(1, 4),
    st.floats(0.0, 0.9),
    st.integers(0, 2**31 - 1),
)
def test_stateful_model_is_pure_and_jit_consistent(batch, features, rate, seed):
    def f(x, is_training):
        return Dropout(rate)(BatchNorm()(x, is_training), is_training)

    model = transform_with_state(f)
    x = jax.random.normal(jax.random.key(seed), (batch, features))
    rng = jax.random.key(seed + 1)
    params, state = model.init(rng, x, True)
    with jax.checking_leaks():
        out, new_state = model.apply(params, state, rng, x, True)
        jitted = jax.jit(model.apply, static_argnums=4)(params, state, rng, x, True)
    again = model.apply(params, state, rng, x, True)
    np.testing.assert_array_equal(out, again[0])
    np.testing.assert_allclose(jitted[0], out, rtol=1e-4, atol=1e-5)
    assert_trees_close(jitted[1], new_state, rtol=1e-5)
    assert_trees_close(again[1], new_state, rtol=0, atol=0)

    evaluated, eval_state = model.apply(params, new_state, None, x, False)
    assert evaluated.shape == x.shape
    assert_trees_close(eval_state, new_state, rtol=0, atol=0)


@JIT_SETTINGS
@given(mlp_cases())
def test_vmap_over_rng_and_batch_gives_independent_dropout(case):
    output_sizes, x, seed = case
    model = transform(lambda x: Dropout(0.5)(MLP(output_sizes)(x), is_training=True))
    params = model.init(jax.random.key(seed), x)
    keys = jax.random.split(jax.random.key(seed), x.shape[0])
    batched = jax.vmap(model.apply, in_axes=(None, 0, 0))(params, keys, x)
    one_by_one = jnp.stack([model.apply(params, k, row) for k, row in zip(keys, x, strict=True)])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=1e-6)
