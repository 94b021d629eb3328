import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from purenn import Module, layers, transform, transform_with_state, without_apply_rng
from purenn.modules import MLP, BatchNorm, Dropout, Linear

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


@st.composite
def module_trees(draw, depth: int = 0):
    """A tree of modules to build: Linear leaves and Block nodes, named or not, some reused.

    Each node is ``(kind, name, payload, calls)``: ``payload`` is a Linear's output size or a
    Block's children, and ``calls`` is 1 or 2 (the same instance applied twice to one input).
    """
    kind = "linear" if depth == 2 else draw(st.sampled_from(["linear", "block"]))
    name = draw(st.one_of(st.none(), st.sampled_from(["encoder", "head"])))
    calls = draw(st.sampled_from([1, 2]))
    if kind == "linear":
        return ("linear", name, draw(st.integers(1, 3)), calls)
    children = draw(st.lists(module_trees(depth=depth + 1), min_size=1, max_size=3))
    return ("block", name, children, calls)


class Block(Module):
    """Applies its children in order; creates them in ``__init__``, so reuse shares them."""

    def __init__(self, children, name=None):
        super().__init__(name=name)
        self.layers = [(build(child), child[3]) for child in children]

    def __call__(self, x):
        for layer, calls in self.layers:
            x = sum(layer(x) for _ in range(calls))
        return x


def build(node):
    kind, name, payload, _ = node
    return Linear(payload, name=name) if kind == "linear" else Block(payload, name=name)


def tree_model(tree):
    def forward(x):
        module = build(tree)
        return sum(module(x) for _ in range(tree[3]))

    return transform(forward)


def expected_params(tree, in_size):
    """The parameter shapes the documented naming rule gives, worked out without purenn.

    A module takes its ``name`` or its class in snake_case, then ``_1``, ``_2``... if that name
    is taken among its siblings, under its parent's full name. Reuse adds no parameters.
    """
    shapes, used = {}, {}

    def visit(node, scope, width):
        kind, name, payload, _ = node
        base = name or kind
        taken = used.setdefault(scope, set())
        own, count = base, 0
        while own in taken:
            count += 1
            own = f"{base}_{count}"
        taken.add(own)
        full = f"{scope}/{own}" if scope else own
        if kind == "linear":
            shapes[full] = {"b": (payload,), "w": (width, payload)}
            return payload
        for child in payload:
            width = visit(child, full, width)
        return width

    visit(tree, "", in_size)
    return shapes


@SETTINGS
@given(module_trees(), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_parameter_names_follow_the_module_tree_and_are_stable(tree, in_size, seed):
    model = tree_model(tree)
    params = model.init(jax.random.key(seed), jnp.ones((2, in_size)))
    expected = expected_params(tree, in_size)
    assert jax.tree.map(jnp.shape, params) == expected
    # Another key and another batch size name and shape the same parameters.
    other = model.init(jax.random.key(seed + 1), jnp.ones((5, in_size)))
    assert jax.tree.map(jnp.shape, other) == expected


@SETTINGS
@given(module_trees(), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_init_then_apply_is_deterministic(tree, in_size, seed):
    model = tree_model(tree)
    x = jax.random.normal(jax.random.key(seed), (3, in_size))
    first, second = model.init(jax.random.key(seed), x), model.init(jax.random.key(seed), x)
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.apply(first, None, x), model.apply(second, None, x))
    # The key, and only the key, decides the weights: another key gives other ones.
    other = model.init(jax.random.key(seed + 1), x)
    assert any(not np.array_equal(first[name]["w"], other[name]["w"]) for name in first)


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
@given(st.integers(2, 6), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_vmap_over_rng_and_batch_gives_independent_dropout(batch, in_size, seed):
    width = 32
    model = transform(lambda x: Dropout(0.5)(MLP([width])(x), is_training=True))
    # Every row is the same example, so rows can only differ by their dropout masks.
    row = jax.random.normal(jax.random.key(seed), (in_size,)) + 1.0
    x = jnp.tile(row, (batch, 1))
    params = model.init(jax.random.key(seed), x)
    keys = jax.random.split(jax.random.key(seed + 1), batch)
    batched = jax.vmap(model.apply, in_axes=(None, 0, 0))(params, keys, x)
    one_by_one = jnp.stack([model.apply(params, k, r) for k, r in zip(keys, x, strict=True)])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=1e-6)
    masks = np.asarray(batched != 0)
    assert masks.shape == (batch, width)
    # Two rows sharing a 32-wide mask by chance has probability 2**-32 per pair.
    assert len({mask.tobytes() for mask in masks}) == batch, "rows got the same dropout mask"
