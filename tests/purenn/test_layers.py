import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purenn import layers


def test_linear_init_shapes_dtype_and_zero_bias():
    params = layers.linear_init(jax.random.key(0), 4, 3)
    assert set(params) == {"w", "b"}
    assert params["w"].shape == (4, 3)
    assert params["b"].shape == (3,)
    assert params["w"].dtype == jnp.float32
    np.testing.assert_array_equal(params["b"], np.zeros(3))


def test_linear_init_dtype_argument():
    params = layers.linear_init(jax.random.key(0), 2, 2, dtype=jnp.bfloat16)
    assert params["w"].dtype == jnp.bfloat16
    assert params["b"].dtype == jnp.bfloat16


def test_linear_init_is_deterministic_given_key():
    first = layers.linear_init(jax.random.key(7), 5, 6)
    second = layers.linear_init(jax.random.key(7), 5, 6)
    other = layers.linear_init(jax.random.key(8), 5, 6)
    np.testing.assert_array_equal(first["w"], second["w"])
    assert not np.allclose(first["w"], other["w"])


def test_linear_init_accepts_raw_uint32_key():
    raw = layers.linear_init(jax.random.PRNGKey(0), 2, 3)
    # A raw uint32 key holds the same bits as the typed key of the same seed: same values.
    typed = layers.linear_init(jax.random.key(0), 2, 3)
    assert raw["w"].shape == (2, 3)
    np.testing.assert_array_equal(raw["w"], typed["w"])
    np.testing.assert_array_equal(raw["b"], typed["b"])


def test_linear_init_has_lecun_scale():
    fan_in = 400
    w = layers.linear_init(jax.random.key(0), fan_in, 500)["w"]
    assert float(jnp.std(w)) == pytest.approx(1 / np.sqrt(fan_in), rel=0.05)
    assert float(jnp.mean(w)) == pytest.approx(0.0, abs=0.01)
    # Truncated at two standard deviations of the untruncated normal.
    assert float(jnp.max(jnp.abs(w))) < 2.5 / np.sqrt(fan_in)


def test_linear_apply_matches_matmul_with_batch_axes():
    params = layers.linear_init(jax.random.key(1), 3, 2)
    params["b"] = jnp.array([0.5, -1.0])
    x = jax.random.normal(jax.random.key(2), (4, 5, 3))
    out = layers.linear_apply(params, x)
    assert out.shape == (4, 5, 2)
    np.testing.assert_allclose(
        out, np.asarray(x) @ np.asarray(params["w"]) + [0.5, -1.0], rtol=1e-5, atol=1e-6
    )


def test_linear_apply_single_example():
    params = {"w": jnp.array([[1.0, 2.0], [3.0, 4.0]]), "b": jnp.array([1.0, 1.0])}
    assert layers.linear_apply(params, jnp.array([1.0, 1.0])).tolist() == [5.0, 7.0]


def test_mlp_init_shapes_and_independent_layers():
    params = layers.mlp_init(jax.random.key(0), [3, 8, 8, 2])
    assert isinstance(params, list)
    assert [p["w"].shape for p in params] == [(3, 8), (8, 8), (8, 2)]
    assert [p["b"].shape for p in params] == [(8,), (8,), (2,)]
    # Each layer gets its own key, so layers of the same shape differ.
    middle = layers.mlp_init(jax.random.key(0), [8, 8, 8])
    assert not np.allclose(middle[0]["w"], middle[1]["w"])


def test_mlp_init_is_deterministic_given_key():
    first = layers.mlp_init(jax.random.key(3), [2, 4, 1])
    second = layers.mlp_init(jax.random.key(3), [2, 4, 1])
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("sizes", [[], [3]])
def test_mlp_init_rejects_too_few_sizes(sizes):
    with pytest.raises(ValueError, match="at least one layer size"):
        layers.mlp_init(jax.random.key(0), sizes)


def _manual_mlp(params, x, activation):
    h = activation(x @ params[0]["w"] + params[0]["b"])
    h = activation(h @ params[1]["w"] + params[1]["b"])
    return h @ params[2]["w"] + params[2]["b"]


@pytest.mark.parametrize("activation", [jax.nn.relu, jnp.tanh, jax.nn.gelu])
def test_mlp_apply_matches_manual_composition(activation):
    params = layers.mlp_init(jax.random.key(4), [3, 6, 5, 2])
    x = jax.random.normal(jax.random.key(5), (7, 3))
    np.testing.assert_allclose(
        layers.mlp_apply(params, x, activation=activation),
        _manual_mlp(params, x, activation),
        rtol=1e-5,
        atol=1e-6,
    )


def test_mlp_apply_default_activation_is_relu_and_last_layer_is_linear():
    params = layers.mlp_init(jax.random.key(6), [2, 16, 1])
    x = jax.random.normal(jax.random.key(7), (64, 2))
    out = layers.mlp_apply(params, x)
    expected = jax.nn.relu(x @ params[0]["w"] + params[0]["b"]) @ params[1]["w"] + params[1]["b"]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    # No ReLU after the last layer: shifting the final bias down makes outputs negative.
    params[1]["b"] = params[1]["b"] - 100.0
    assert float(layers.mlp_apply(params, x).max()) < 0


def test_params_are_pytrees_for_jit_and_grad():
    params = layers.mlp_init(jax.random.key(8), [3, 4, 1])
    x = jnp.ones((2, 3))

    def loss(p):
        return jnp.sum(layers.mlp_apply(p, x) ** 2)

    grads = jax.grad(loss)(params)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    np.testing.assert_allclose(jax.jit(loss)(params), loss(params), rtol=1e-6)
    doubled = jax.tree.map(lambda a: 2 * a, params)
    assert doubled[0]["w"].shape == (3, 4)
