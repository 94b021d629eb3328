"""Layers as pure ``init``/``apply`` function pairs over plain pytrees.

Each layer is two functions: ``*_init(key, ...)`` returns its parameters as a dict (or a list
of dicts) of arrays, and ``*_apply(params, x)`` computes the output from them. Nothing is
hidden: the key is explicit and the parameters are ordinary pytrees, so ``jax.grad``,
``jax.jit``, ``jax.tree.map`` and optax work on them directly.

Weights start from a LeCun normal initialization: a normal distribution truncated at two
standard deviations and rescaled to variance ``1 / in_features``, which keeps the scale of
activations roughly constant from layer to layer. Biases start at zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

Params = dict[str, jax.Array]


def linear_init(
    key: jax.Array, in_features: int, out_features: int, dtype: jnp.dtype = jnp.float32
) -> Params:
    """Create the parameters of a fully connected layer.

    Args:
        key: a PRNG key, e.g. ``jax.random.key(0)``; the same key gives the same parameters.
        in_features: the size of the last axis of the input.
        out_features: the size of the last axis of the output.
        dtype: the dtype of the parameters.

    Returns:
        ``{"w": (in_features, out_features) LeCun normal weights, "b": (out_features,) zeros}``.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> params = purenn.layers.linear_init(jax.random.key(0), 3, 2)
        >>> print(jax.tree.map(jnp.shape, params))
        {'b': (2,), 'w': (3, 2)}
    """
    w = jax.nn.initializers.lecun_normal()(key, (in_features, out_features), dtype)
    return {"w": w, "b": jnp.zeros((out_features,), dtype)}


def linear_apply(params: Params, x: jax.Array) -> jax.Array:
    """Apply a fully connected layer: ``x @ w + b`` over the last axis of ``x``.

    Args:
        params: the dict returned by :func:`linear_init`.
        x: an array of shape ``(..., in_features)``.

    Returns:
        An array of shape ``(..., out_features)``.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> params = {"w": jnp.eye(2), "b": jnp.array([1.0, -1.0])}
        >>> purenn.layers.linear_apply(params, jnp.array([[2.0, 3.0]])).tolist()
        [[3.0, 2.0]]
    """
    return x @ params["w"] + params["b"]


def mlp_init(key: jax.Array, sizes: Sequence[int]) -> list[Params]:
    """Create the parameters of a multilayer perceptron.

    Args:
        key: a PRNG key; it is split into one key per layer.
        sizes: the input size followed by each layer's output size, e.g. ``[3, 16, 1]``
            for one hidden layer of 16 units.

    Returns:
        A list with one :func:`linear_init` dict per layer.

    Raises:
        ValueError: if ``sizes`` has fewer than two entries.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> params = purenn.layers.mlp_init(jax.random.key(0), [3, 16, 1])
        >>> [layer["w"].shape for layer in params]
        [(3, 16), (16, 1)]
    """
    if len(sizes) < 2:
        raise ValueError(
            f"mlp_init needs the input size and at least one layer size, e.g. [3, 1]; "
            f"got sizes={list(sizes)}."
        )
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        linear_init(layer_key, fan_in, fan_out)
        for layer_key, fan_in, fan_out in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def mlp_apply(
    params: Sequence[Params],
    x: jax.Array,
    activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
) -> jax.Array:
    """Apply a multilayer perceptron: linear layers with ``activation`` between them.

    There is no activation after the last layer, so the output can take any real value.

    Args:
        params: the list returned by :func:`mlp_init`.
        x: an array of shape ``(..., sizes[0])``.
        activation: the function applied after every layer but the last.

    Returns:
        An array of shape ``(..., sizes[-1])``.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> params = purenn.layers.mlp_init(jax.random.key(0), [3, 16, 1])
        >>> purenn.layers.mlp_apply(params, jnp.ones((5, 3)), activation=jnp.tanh).shape
        (5, 1)
    """
    *hidden, last = params
    for layer in hidden:
        x = activation(linear_apply(layer, x))
    return linear_apply(last, x)
