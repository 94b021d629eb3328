import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from purenn import (
    MissingParameterError,
    MissingRngError,
    Module,
    ShapeMismatchError,
    Transformed,
    TransformedWithState,
    TransformError,
    TransformTypeError,
    get_parameter,
    get_state,
    layers,
    next_rng_key,
    set_state,
    transform,
    transform_with_state,
    without_apply_rng,
)
from purenn.modules import MLP, BatchNorm, Dropout, Linear

KEY = jax.random.key(0)
X = jnp.ones((2, 3))


def shapes(tree):
    return jax.tree.map(jnp.shape, tree)


def module_names(f, *args):
    return sorted(transform(f).init(KEY, *args))


# Naming.


def test_single_module_is_named_after_its_class():
    assert module_names(lambda x: Linear(2)(x), X) == ["linear"]


def test_second_module_of_a_class_gets_a_counter():
    def f(x):
        x = Linear(3)(x)
        x = Linear(4)(x)
        return Linear(2)(x)

    params = transform(f).init(KEY, X)
    assert shapes(params) == {
        "linear": {"w": (3, 3), "b": (3,)},
        "linear_1": {"w": (3, 4), "b": (4,)},
        "linear_2": {"w": (4, 2), "b": (2,)},
    }


def test_modules_created_in_a_module_are_nested_under_it():
    def f(x):
        return MLP([4, 2])(MLP([3])(x))

    assert module_names(f, X) == ["mlp/linear", "mlp/linear_1", "mlp_1/linear"]


def test_modules_created_in_call_are_nested_and_counted_per_scope():
    class Block(Module):
        def __call__(self, x):
            return Linear(2, name="out")(Linear(2)(Linear(2)(x)))

    def f(x):
        return Block()(Linear(3)(x))

    assert module_names(f, X) == ["block/linear", "block/linear_1", "block/out", "linear"]


def test_deeply_nested_names():
    class Inner(Module):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.mlp = MLP([2])

        def __call__(self, x):
            return self.mlp(x)

    class Outer(Module):
        def __call__(self, x):
            return Inner()(Inner(name="second")(x))

    assert module_names(lambda x: Outer()(x), X) == [
        "outer/inner/mlp/linear",
        "outer/second/mlp/linear",
    ]


def test_public_methods_other_than_call_also_scope_their_modules():
    class Encoder(Module):
        def encode(self, x):
            return Linear(2)(x)

    assert module_names(lambda x: Encoder().encode(x), X) == ["encoder/linear"]


def test_explicit_names_and_their_counters():
    def f(x):
        return Linear(2, name="head")(Linear(3, name="head")(x))

    assert module_names(f, X) == ["head", "head_1"]


def test_module_name_attributes():
    seen = {}

    def f(x):
        mlp = MLP([2, 2], name="body")
        seen["mlp"] = (mlp.name, mlp.module_name)
        seen["layers"] = [(layer.name, layer.module_name) for layer in mlp.layers]
        return mlp(x)

    transform(f).init(KEY, X)
    assert seen == {
        "mlp": ("body", "body"),
        "layers": [("linear", "body/linear"), ("linear_1", "body/linear_1")],
    }


@pytest.mark.parametrize(
    ("class_name", "expected"),
    [
        ("Linear", "linear"),
        ("BatchNorm", "batch_norm"),
        ("MLP", "mlp"),
        ("HTTPServer", "http_server"),
        ("Conv2D", "conv2_d"),
        ("My_Layer", "my_layer"),
    ],
)
def test_snake_case_names(class_name, expected):
    def call(self):
        return get_parameter("p", (), init=jnp.ones)

    cls = type(class_name, (Module,), {"__call__": call})
    assert list(transform(lambda: cls()()).init(None)) == [expected]


def test_invalid_explicit_name_is_rejected():
    with pytest.raises(ValueError, match="not a Python identifier"):
        transform(lambda x: Linear(2, name="a/b")(x)).init(KEY, X)


def test_top_level_parameters_live_under_tilde():
    def f(x):
        return x * get_parameter("scale", (), init=jnp.ones)

    params = transform(f).init(None, X)
    assert shapes(params) == {"~": {"scale": ()}}


def test_names_are_the_same_in_init_and_apply():
    seen = []

    def f(x):
        mlp = MLP([3, 1])
        seen.append([layer.module_name for layer in mlp.layers])
        return mlp(x)

    model = transform(f)
    params = model.init(KEY, X)
    model.apply(params, None, X)
    model.apply(params, None, X)
    assert seen[0] == seen[1] == seen[2] == ["mlp/linear", "mlp/linear_1"]


# Parameters.


def test_calling_a_module_twice_reuses_its_parameters():
    def f(x):
        layer = Linear(3)
        return layer(layer(x))

    model = transform(f)
    params = model.init(KEY, jnp.ones((2, 3)))
    assert shapes(params) == {"linear": {"w": (3, 3), "b": (3,)}}
    x = jnp.arange(6.0).reshape(2, 3)
    once = layers.linear_apply(params["linear"], x)
    np.testing.assert_allclose(
        model.apply(params, None, x), layers.linear_apply(params["linear"], once), rtol=1e-6
    )


def test_init_is_deterministic_and_depends_on_key():
    model = transform(lambda x: MLP([4, 2])(x))
    first, second = model.init(KEY, X), model.init(KEY, X)
    other = model.init(jax.random.key(1), X)
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first["mlp/linear"]["w"], other["mlp/linear"]["w"])


def test_each_parameter_gets_its_own_key():
    params = transform(lambda x: Linear(3)(Linear(3)(x))).init(KEY, jnp.ones((1, 3)))
    assert not np.allclose(params["linear"]["w"], params["linear_1"]["w"])


def test_linear_matches_layers_linear_apply():
    model = transform(lambda x: Linear(4)(x))
    x = jax.random.normal(jax.random.key(2), (5, 3))
    params = model.init(KEY, x)
    np.testing.assert_allclose(
        model.apply(params, None, x), layers.linear_apply(params["linear"], x), rtol=1e-6
    )


def test_linear_default_init_is_lecun_and_bias_zero():
    params = transform(lambda x: Linear(400)(x)).init(KEY, jnp.ones((1, 400)))
    assert float(jnp.std(params["linear"]["w"])) == pytest.approx(1 / 20, rel=0.05)
    assert not params["linear"]["b"].any()


def test_linear_options():
    def f(x):
        return Linear(2, with_bias=False, w_init=jnp.ones)(x)

    model = transform(f)
    params = model.init(None, X)
    assert shapes(params) == {"linear": {"w": (3, 2)}}
    assert model.apply(params, None, X).tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_linear_uses_float32_for_integer_inputs():
    params = transform(lambda x: Linear(2)(x)).init(KEY, jnp.ones((1, 3), jnp.int32))
    assert params["linear"]["w"].dtype == jnp.float32


@pytest.mark.parametrize("activate_final", [False, True])
def test_mlp_matches_layers_mlp_apply(activate_final):
    model = transform(lambda x: MLP([5, 4, 2], jnp.tanh, activate_final)(x))
    x = jax.random.normal(jax.random.key(3), (6, 3))
    params = model.init(KEY, x)
    as_list = [params["mlp/linear"], params["mlp/linear_1"], params["mlp/linear_2"]]
    expected = layers.mlp_apply(as_list, x, activation=jnp.tanh)
    if activate_final:
        expected = jnp.tanh(expected)
    np.testing.assert_allclose(model.apply(params, None, x), expected, rtol=1e-5, atol=1e-6)


def test_init_and_apply_accept_keyword_arguments():
    def f(x, scale=1.0):
        return Linear(2)(x) * scale

    model = transform(f)
    params = model.init(KEY, x=X, scale=2.0)
    np.testing.assert_allclose(
        model.apply(params, None, X, scale=2.0), 2 * model.apply(params, None, X), rtol=1e-6
    )


def test_params_work_with_tree_map_grad_and_optax():
    model = without_apply_rng(transform(lambda x: MLP([16, 1])(x)))
    x = jax.random.normal(jax.random.key(4), (32, 2))
    y = x[:, :1] - 2 * x[:, 1:]
    params = model.init(KEY, x)
    optimizer = optax.adam(0.05)
    opt_state = optimizer.init(params)

    def loss(p):
        return jnp.mean((model.apply(p, x) - y) ** 2)

    @jax.jit
    def step(p, s):
        grads = jax.grad(loss)(p)
        updates, s = optimizer.update(grads, s)
        return optax.apply_updates(p, updates), s

    start = loss(params)
    for _ in range(50):
        params, opt_state = step(params, opt_state)
    assert loss(params) < 0.2 * start
    assert jax.tree.structure(params) == jax.tree.structure(model.init(KEY, x))


# Randomness.


def test_next_rng_key_is_deterministic_and_distinct_within_a_call():
    def f():
        return jax.random.uniform(next_rng_key()), jax.random.uniform(next_rng_key())

    model = transform(f)
    first = model.apply({}, jax.random.key(5))
    assert first == model.apply({}, jax.random.key(5))
    assert first[0] != first[1]
    assert first != model.apply({}, jax.random.key(6))


@pytest.mark.parametrize("rng", [jax.random.PRNGKey(3), 3, jnp.int32(3)])
def test_raw_keys_and_int_seeds_are_accepted(rng):
    model = transform(lambda: jax.random.uniform(next_rng_key()))
    assert 0.0 <= float(model.apply({}, rng)) < 1.0
    assert model.apply({}, rng) == model.apply({}, rng)


def test_dropout_depends_on_rng_and_keeps_expectation():
    model = transform(lambda x: Dropout(0.25)(x, is_training=True))
    x = jnp.ones(4000)
    a = model.apply({}, jax.random.key(0), x)
    b = model.apply({}, jax.random.key(1), x)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, model.apply({}, jax.random.key(0), x))
    np.testing.assert_allclose(np.unique(np.asarray(a)), [0.0, 4 / 3], rtol=1e-6)
    assert float(a.mean()) == pytest.approx(1.0, abs=0.05)


def test_dropout_is_identity_at_eval_even_without_rng():
    model = transform(lambda x: Dropout(0.5)(x, is_training=False))
    x = jnp.arange(5.0)
    np.testing.assert_array_equal(model.apply({}, None, x), x)
    np.testing.assert_array_equal(transform(lambda x: Dropout(0.0)(x, True)).apply({}, None, x), x)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_rate_is_validated(rate):
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        transform(lambda x: Dropout(rate)(x, True)).init(KEY, X)


# State.


def bn_model(decay=0.9):
    return transform_with_state(lambda x, is_training: BatchNorm(decay=decay)(x, is_training))


def test_batch_norm_init_returns_initial_statistics():
    params, state = bn_model().init(None, jnp.arange(6.0).reshape(3, 2), True)
    assert shapes(params) == {"batch_norm": {"scale": (2,), "offset": (2,)}}
    assert state["batch_norm"]["mean"].tolist() == [0.0, 0.0]
    assert state["batch_norm"]["var"].tolist() == [1.0, 1.0]


def test_batch_norm_training_updates_running_statistics():
    model = bn_model(decay=0.8)
    x = jax.random.normal(jax.random.key(0), (50, 3)) * 2.0 + 1.0
    params, state = model.init(None, x, True)
    out, new_state = model.apply(params, state, None, x, True)
    np.testing.assert_allclose(new_state["batch_norm"]["mean"], 0.2 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(new_state["batch_norm"]["var"], 0.8 + 0.2 * x.var(0), rtol=1e-5)
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(0), 1.0, atol=1e-3)
    # The state passed in is left untouched.
    assert state["batch_norm"]["mean"].tolist() == [0.0, 0.0, 0.0]
    # Threading the state through steps converges to the data's statistics.
    for _ in range(60):
        _, new_state = model.apply(params, new_state, None, x, True)
    np.testing.assert_allclose(new_state["batch_norm"]["mean"], x.mean(0), rtol=1e-3)


def test_batch_norm_eval_uses_running_statistics_and_keeps_state():
    model = bn_model()
    x = jnp.arange(8.0).reshape(4, 2)
    params, state = model.init(None, x, False)
    state = {"batch_norm": {"mean": jnp.array([1.0, 2.0]), "var": jnp.array([4.0, 4.0])}}
    out, new_state = model.apply(params, state, None, x, False)
    np.testing.assert_allclose(out, (x - jnp.array([1.0, 2.0])) / 2.0, rtol=1e-4)
    assert new_state == state


def test_get_state_and_set_state_thread_a_counter():
    def f():
        count = get_state("count", (), jnp.int32, init=jnp.zeros)
        set_state("count", count + 1)
        return count

    model = transform_with_state(f)
    params, state = model.init(None)
    assert params == {} and int(state["~"]["count"]) == 0
    outs = []
    for _ in range(3):
        out, state = model.apply(params, state, None)
        outs.append(int(out))
    assert outs == [0, 1, 2] and int(state["~"]["count"]) == 3


def test_get_state_after_set_state_sees_the_new_value():
    def f():
        get_state("v", (), init=jnp.zeros)
        set_state("v", jnp.float32(5.0))
        return get_state("v")

    model = transform_with_state(f)
    params, state = model.init(None)
    assert float(state["~"]["v"]) == 0.0
    out, new_state = model.apply(params, state, None)
    assert float(out) == 5.0 == float(new_state["~"]["v"])


def test_set_state_during_init_without_get_state_creates_the_entry():
    model = transform_with_state(lambda x: set_state("last", x))
    _, state = model.init(None, jnp.zeros(2))
    assert state["~"]["last"].tolist() == [0.0, 0.0]


def test_batch_norm_and_dropout_together_with_jit():
    def f(x, is_training):
        x = Linear(8)(x)
        x = BatchNorm()(x, is_training)
        return Dropout(0.5)(jax.nn.relu(x), is_training)

    model = transform_with_state(f)
    x = jax.random.normal(KEY, (16, 3))
    params, state = model.init(KEY, x, True)
    apply = jax.jit(model.apply, static_argnums=4)
    out, new_state = apply(params, state, jax.random.key(1), x, True)
    eager, eager_state = model.apply(params, state, jax.random.key(1), x, True)
    np.testing.assert_allclose(out, eager, rtol=1e-5, atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), new_state, eager_state)
    evaluated, same_state = apply(params, new_state, None, x, False)
    assert evaluated.shape == (16, 8)
    jax.tree.map(np.testing.assert_array_equal, same_state, new_state)


# Transformed pairs and JAX transformations of them.


def test_transform_returns_named_tuples():
    model = transform(lambda x: Linear(2)(x))
    assert isinstance(model, Transformed) and model._fields == ("init", "apply")
    stateful = transform_with_state(lambda x: Linear(2)(x))
    assert isinstance(stateful, TransformedWithState)
    init, apply = model
    assert init is model.init and apply is model.apply


def test_without_apply_rng_for_both_kinds():
    with_rng = transform(lambda x: Linear(2)(x))
    model = without_apply_rng(with_rng)
    assert isinstance(model, Transformed)
    params = model.init(KEY, X)
    assert shapes(params) == shapes(with_rng.init(KEY, X))
    expected = X @ params["linear"]["w"] + params["linear"]["b"]
    np.testing.assert_allclose(model.apply(params, X), expected, rtol=1e-6)
    np.testing.assert_array_equal(model.apply(params, X), with_rng.apply(params, None, X))

    stateful = without_apply_rng(bn_model())
    assert isinstance(stateful, TransformedWithState)
    x = jnp.arange(6.0).reshape(3, 2)
    params, state = stateful.init(None, x, True)
    out, new_state = stateful.apply(params, state, x, True)
    expected_out, expected_state = bn_model().apply(params, state, None, x, True)
    np.testing.assert_array_equal(out, expected_out)
    jax.tree.map(np.testing.assert_array_equal, new_state, expected_state)
    # Training mode normalises each column to mean 0.
    np.testing.assert_allclose(out.mean(axis=0), [0.0, 0.0], atol=1e-6)


def test_without_apply_rng_rejects_other_values():
    with pytest.raises(TransformTypeError, match=r"without_apply_rng\(purenn.transform\(f\)\)"):
        without_apply_rng(lambda x: x)


def test_jit_of_returned_init_and_apply():
    model = transform(lambda x: MLP([4, 2])(x))
    params = jax.jit(model.init)(KEY, X)
    eager_params = model.init(KEY, X)
    jax.tree.map(np.testing.assert_array_equal, params, eager_params)
    np.testing.assert_allclose(
        jax.jit(model.apply)(params, None, X), model.apply(params, None, X), rtol=1e-6
    )


def test_jit_of_returned_apply_uses_the_params_it_is_given():
    model = transform(lambda x: Linear(2)(x))
    apply = jax.jit(model.apply)
    params = model.init(KEY, X)
    zeros = jax.tree.map(jnp.zeros_like, params)
    assert apply(params, None, X).any()
    assert not apply(zeros, None, X).any()


def test_eval_shape_of_init():
    model = transform(lambda x: MLP([4, 2])(x))
    abstract = jax.eval_shape(model.init, KEY, X)
    assert shapes(abstract) == shapes(model.init(KEY, X))


def assert_no_model_is_running():
    """What a frame left behind by a failed call would break, seen from outside."""
    with pytest.raises(TransformError, match="inside a function passed to purenn.transform"):
        get_parameter("w", (1,), init=jnp.zeros)
    with pytest.raises(TransformError, match="inside a function passed to purenn.transform"):
        Linear(1)


def test_a_failed_apply_leaves_nothing_behind():
    model = transform(lambda x: Linear(2)(x))
    params = model.init(KEY, X)
    before = model.apply(params, None, X)
    with pytest.raises(MissingParameterError):
        model.apply({}, None, X)
    assert_no_model_is_running()
    np.testing.assert_array_equal(model.apply(params, None, X), before)


def test_nested_transform_inside_a_model():
    inner = transform(lambda x: Linear(2)(x))

    def outer(x):
        params = inner.init(next_rng_key(), x)
        return Linear(1)(inner.apply(params, None, x))

    params = transform(outer).init(KEY, X)
    assert sorted(params) == ["linear"]


# Misuse: each error names the problem and the fix.


def assert_says(caught, *facts, leaving_out=()):
    """The error's message carries every fact (the names, the numbers, the call that fixes it),
    in whatever sentence, and none of ``leaving_out``."""
    message = str(caught.value)
    missing = [fact for fact in facts if fact not in message]
    assert not missing, f"{message!r} does not say {missing}"
    wrong = [fact for fact in leaving_out if fact in message]
    assert not wrong, f"{message!r} should not say {wrong}"


FIX_TRANSFORM = r"wrap your model with purenn.transform\(f\) and call .init / .apply"


def test_module_created_outside_transform():
    with pytest.raises(
        TransformError,
        match=r"Linear\(...\) must be created inside a function "
        r"passed to purenn.transform.*" + FIX_TRANSFORM,
    ):
        Linear(2)


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda: get_parameter("w", (1,), init=jnp.zeros), "purenn.get_parameter"),
        (next_rng_key, "purenn.next_rng_key"),
        (lambda: get_state("s", (1,), init=jnp.zeros), "purenn.get_state"),
        (lambda: set_state("s", 1.0), "purenn.set_state"),
    ],
)
def test_functions_called_outside_transform(call, what):
    with pytest.raises(
        TransformError,
        match=what + r" must be called inside a function passed "
        r"to purenn.transform.*" + FIX_TRANSFORM,
    ):
        call()


def test_parameter_missing_at_apply_names_module_and_existing_ones():
    small = transform(lambda x: Linear(2)(x))
    big = transform(lambda x: Linear(2)(Linear(3)(x)))
    params = small.init(KEY, X)
    with pytest.raises(MissingParameterError) as caught:
        big.apply(params, None, X)
    # The missing name, its module, the modules the params do have, and where to get them.
    assert_says(caught, "'w'", "'linear_1'", "['linear']", ".init")


def test_parameter_missing_in_an_existing_module():
    model = transform(lambda x: Linear(2)(x))
    params = model.init(KEY, X)
    del params["linear"]["b"]
    with pytest.raises(
        MissingParameterError, match=r"'b' of module 'linear'.*module 'linear' there has \['w'\]"
    ):
        model.apply(params, None, X)


def test_parameter_of_wrong_shape_at_apply():
    model = transform(lambda x: Linear(2)(x))
    params = model.init(KEY, jnp.ones((1, 3)))
    with pytest.raises(ShapeMismatchError) as caught:
        model.apply(params, None, jnp.ones((1, 5)))
    # The parameter, its module, the shape it has, then the shape asked for, and the fix.
    assert_says(caught, "'w'", "'linear'", "(3, 2)", "(5, 2)", "init")
    assert str(caught.value).index("(3, 2)") < str(caught.value).index("(5, 2)")


def test_parameter_of_wrong_shape_when_a_module_is_reused_in_init():
    def f(x):
        layer = Linear(2)
        return layer(layer(x))

    with pytest.raises(
        ShapeMismatchError,
        match=r"called again with inputs of another shape.*"
        r"create a separate module",
    ):
        transform(f).init(KEY, X)


def test_initializer_returning_wrong_shape_is_caught():
    def f():
        return get_parameter("w", (2, 2), init=lambda shape, dtype: jnp.zeros(3))

    with pytest.raises(ShapeMismatchError, match=r"shape \(3,\) but the model asks for shape"):
        transform(f).init(None)


def test_get_parameter_without_init_during_init():
    with pytest.raises(TransformTypeError, match=r"needs init= .*e.g. init=jnp.zeros"):
        transform(lambda: get_parameter("w", (2,))).init(None)


def test_randomness_at_apply_with_rng_none():
    model = transform(lambda x: Dropout(0.5)(x, is_training=True))
    with pytest.raises(MissingRngError) as caught:
        model.apply({}, None, X)
    # Which call lacked the key, the call that passes one, and the way to need none.
    assert_says(
        caught,
        "apply",
        "rng=None",
        "model.apply(params, jax.random.key(0), x)",
        "is_training=False",
    )


def test_randomness_after_without_apply_rng_mentions_it():
    model = without_apply_rng(transform(lambda x: Dropout(0.5)(x, is_training=True)))
    with pytest.raises(MissingRngError, match="made by without_apply_rng takes no key"):
        model.apply({}, X)


def test_randomness_at_apply_with_state_shows_the_stateful_call():
    model = transform_with_state(lambda x: Dropout(0.5)(x, is_training=True))
    params, state = model.init(KEY, X)
    with pytest.raises(
        MissingRngError, match=r"model\.apply\(params, state, jax\.random\.key\(0\), x\)"
    ):
        model.apply(params, state, None, X)


def test_init_with_rng_none_when_parameters_need_randomness():
    with pytest.raises(
        MissingRngError,
        match=r"init was called with rng=None.*"
        r"model\.init\(jax\.random\.key\(0\), x\)",
    ):
        transform(lambda x: Linear(2)(x)).init(None, X)


@pytest.mark.parametrize(
    "use_state",
    [
        lambda: get_state("s", (), init=jnp.zeros),
        lambda: set_state("s", 1.0),
        lambda: BatchNorm()(X, True),
    ],
)
def test_state_under_plain_transform(use_state):
    with pytest.raises(TransformError) as caught:
        transform(use_state).init(None)
    # The state function used, the transform that has no state, and the one to use.
    message = str(caught.value)
    assert re.search(r"purenn\.(get|set)_state", message), message
    assert_says(caught, "purenn.transform", "purenn.transform_with_state(f)")


def test_state_missing_at_apply():
    model = bn_model()
    params, _ = model.init(None, X, True)
    with pytest.raises(
        MissingParameterError,
        match=r"state entry 'mean' of module 'batch_norm' is not in the state "
        r"passed to apply.*use the state returned by .init",
    ):
        model.apply(params, {}, None, X, True)


def test_state_of_wrong_shape_at_apply():
    model = bn_model()
    params, state = model.init(None, X, True)
    state = {"batch_norm": {"mean": jnp.zeros(5), "var": jnp.ones(3)}}
    with pytest.raises(
        ShapeMismatchError, match=r"state entry 'mean' of module 'batch_norm' has shape \(5,\)"
    ):
        model.apply(params, state, None, X, True)


def test_set_state_of_an_entry_init_did_not_create():
    def f(is_training):
        if is_training:
            set_state("extra", 1.0)

    model = transform_with_state(f)
    params, state = model.init(None, False)
    with pytest.raises(
        MissingParameterError, match=r"state entry 'extra' of module '~'.*called the same"
    ):
        model.apply(params, state, None, True)


def test_get_state_without_shape_or_init_during_init():
    with pytest.raises(TransformTypeError, match=r"needs shape= and init="):
        transform_with_state(lambda: get_state("s")).init(None)


@pytest.mark.parametrize(
    ("params", "described"),
    [
        ([1.0, 2.0], ["list"]),
        (jnp.ones(3), ["(3,)", "float32"]),
        ({"linear": jnp.ones(3)}, ["dict"]),
        (None, ["NoneType"]),
    ],
)
def test_params_that_are_not_a_mapping(params, described):
    model = transform(lambda x: Linear(2)(x))
    with pytest.raises(TransformTypeError) as caught:
        model.apply(params, None, X)
    # Which argument is wrong, the structure it needs, what it was, and the call's order.
    signature = "apply(params, rng, *args)"
    assert_says(caught, "{module_name: {name: array}}", ".init", signature, *described)
    assert "params" in str(caught.value).replace(signature, "")


def test_swapped_params_and_rng():
    model = transform(lambda x: Linear(2)(x))
    params = model.init(KEY, X)
    with pytest.raises(TransformTypeError, match=r"but got .*dtype key<fry>.*apply\(params, rng"):
        model.apply(KEY, params, X)


def test_state_that_is_not_a_mapping():
    model = bn_model()
    params, state = model.init(None, X, True)
    with pytest.raises(TransformTypeError) as caught:
        model.apply(params, [state], None, X, True)
    signature = "apply(params, state, rng, *args)"
    assert_says(caught, "list", signature)
    assert "state" in str(caught.value).replace(signature, "")


def test_forgetting_the_rng_argument_of_apply():
    model = transform(lambda x: Linear(2)(x))
    params = model.init(KEY, X)
    with pytest.raises(TransformTypeError) as caught:
        model.apply(params, X)
    # What rng must be, the shape of what came instead, the call, and the keyless fix.
    assert_says(
        caught,
        "rng",
        "jax.random.key(0)",
        "(2, 3)",
        "apply(params, rng, *args)",
        "purenn.without_apply_rng(model)",
    )


def test_init_with_something_that_is_not_a_key():
    model = transform(lambda x: Linear(2)(x))
    with pytest.raises(TransformTypeError) as caught:
        model.init(0.5, X)
    # init always takes a key: the fix for a keyless apply would be wrong here.
    assert_says(caught, "rng", "float", "init(rng, *args)", leaving_out=["without_apply_rng"])


def test_transform_of_something_not_callable():
    with pytest.raises(TransformTypeError, match="purenn.transform expects a function"):
        transform(3)


def test_module_subclass_that_skips_super_init():
    class Broken(Module):
        def __init__(self):
            self.size = 2

        def __call__(self, x):
            return x * get_parameter("w", (), init=jnp.ones)

    with pytest.raises(TransformError) as caught:
        transform(lambda x: Broken()(x)).init(None, X)
    assert_says(caught, "Broken", "__init__", "super().__init__(name=name)")


# JAX transformations applied before purenn.transform.


def _forward(x):
    return Linear(2)(x)


JIT_FIX = r"jit the results instead: model = purenn.transform\(f\), then jax.jit\(model.init\)"


@pytest.mark.parametrize("wrapped", [jax.jit(_forward), functools.partial(jax.jit(_forward))])
def test_transform_of_a_jitted_function_is_rejected(wrapped):
    with pytest.raises(TransformTypeError, match=r"already wrapped in jax.jit.*" + JIT_FIX):
        transform(wrapped)
    with pytest.raises(TransformTypeError, match=r"purenn.transform_with_state\(f\), then"):
        transform_with_state(wrapped)


INNER_FIX = (
    r"under a JAX transformation .* applied inside the function passed to "
    r"purenn.transform.*e.g. jax.jit\(model.init\) and jax.jit\(model.apply\)"
)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda f: lambda x: jax.jit(f)(x),
        jax.vmap,
        lambda f: jax.pmap(f, axis_name="i"),
        lambda f: lambda x: jax.lax.map(f, x),
    ],
)
def test_jax_transformations_inside_the_model_are_detected_at_init(wrap):
    model = transform(wrap(_forward))
    with pytest.raises(
        TransformError, match=r"purenn.get_parameter\('w'\) in module 'linear' ran " + INNER_FIX
    ):
        model.init(KEY, jnp.ones((1, 3)))
    assert_no_model_is_running()


def test_randomness_inside_an_inner_jit_at_apply_is_detected():
    model = transform(lambda x: jax.jit(lambda y: Dropout(0.5)(y, True))(x))
    with pytest.raises(TransformError, match=r"purenn.next_rng_key\(\) ran " + INNER_FIX):
        model.apply({}, KEY, X)


def test_reading_parameters_inside_an_inner_transformation_at_apply_works():
    def f(x, build):
        layer = Linear(2)
        if build:
            return layer(x[0])
        return jax.vmap(layer)(x)

    model = transform(f)
    params = model.init(KEY, X, True)
    out = model.apply(params, None, X, False)
    np.testing.assert_allclose(out, layers.linear_apply(params["linear"], X), rtol=1e-6)


def test_errors_share_a_base_and_standard_types():
    assert issubclass(TransformTypeError, TypeError)
    assert issubclass(MissingParameterError, LookupError)
    assert issubclass(ShapeMismatchError, ValueError)
    assert issubclass(MissingRngError, ValueError)
    for error in (TransformTypeError, MissingParameterError, ShapeMismatchError, MissingRngError):
        assert issubclass(error, TransformError)
