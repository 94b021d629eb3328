"""Ready-made modules for :func:`purenn.transform`: Linear, MLP, BatchNorm and Dropout."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from purenn._transform import (
    Initializer,
    Module,
    get_parameter,
    get_state,
    next_rng_key,
    set_state,
)


def _lecun_normal(shape: tuple[int, ...], dtype: Any) -> jax.Array:
    # Variance 1/fan_in keeps activations at unit scale through a linear layer; the
    # truncated normal avoids rare huge weights and is rescaled to keep that variance.
    return jax.nn.initializers.lecun_normal()(next_rng_key(), shape, dtype)


class Linear(Module):
    """A fully connected layer, ``y = x @ w + b``; the input size is read from ``x``.

    Args:
        output_size: the size of the last axis of the output.
        with_bias: whether to add the bias ``b``.
        w_init: initializer for ``w``, called as ``w_init(shape, dtype)``. Defaults to
            LeCun normal: a truncated normal with variance ``1 / input_size``.
        b_init: initializer for ``b``; defaults to zeros.
        name: the module's name; defaults to ``"linear"``.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> model = purenn.transform(lambda x: purenn.Linear(3)(x))
        >>> params = model.init(jax.random.key(0), jnp.ones((2, 5)))
        >>> print(jax.tree.map(jnp.shape, params))
        {'linear': {'b': (3,), 'w': (5, 3)}}
    """

    def __init__(
        self,
        output_size: int,
        with_bias: bool = True,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.output_size = output_size
        self.with_bias = with_bias
        self.w_init = w_init or _lecun_normal
        self.b_init = b_init or jnp.zeros

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the layer to the last axis of ``x``.

        Args:
            x: an array of shape ``(..., input_size)``.

        Returns:
            An array of shape ``(..., output_size)``.

        Example:
            >>> import jax, jax.numpy as jnp, purenn
            >>> model = purenn.transform(lambda x: purenn.Linear(3, with_bias=False)(x))
            >>> params = model.init(jax.random.key(0), jnp.ones(4))
            >>> model.apply(params, None, jnp.zeros((7, 4))).tolist() == [[0.0] * 3] * 7
            True
        """
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
        w = get_parameter("w", (x.shape[-1], self.output_size), dtype, init=self.w_init)
        y = x @ w
        if self.with_bias:
            y = y + get_parameter("b", (self.output_size,), dtype, init=self.b_init)
        return y


class MLP(Module):
    """A stack of :class:`Linear` layers with an activation between them.

    The layers are created in ``__init__``, so they are named ``mlp/linear``,
    ``mlp/linear_1``, ... There is no activation after the last layer unless
    ``activate_final`` is set.

    Args:
        output_sizes: the output size of each layer, e.g. ``[64, 64, 10]``.
        activation: the function applied between layers.
        activate_final: whether to apply ``activation`` after the last layer too.
        name: the module's name; defaults to ``"mlp"``.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> model = purenn.transform(lambda x: purenn.MLP([8, 8, 1])(x))
        >>> params = model.init(jax.random.key(0), jnp.ones((4, 3)))
        >>> sorted(params)
        ['mlp/linear', 'mlp/linear_1', 'mlp/linear_2']
    """

    def __init__(
        self,
        output_sizes: Sequence[int],
        activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
        activate_final: bool = False,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.layers = [Linear(size) for size in output_sizes]
        self.activation = activation
        self.activate_final = activate_final

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the layers in order.

        Args:
            x: an array of shape ``(..., input_size)``.

        Returns:
            An array of shape ``(..., output_sizes[-1])``.

        Example:
            >>> import jax, jax.numpy as jnp, purenn
            >>> model = purenn.transform(lambda x: purenn.MLP([5, 2], jnp.tanh)(x))
            >>> params = model.init(jax.random.key(0), jnp.ones(3))
            >>> model.apply(params, None, jnp.ones((6, 3))).shape
            (6, 2)
        """
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1 or self.activate_final:
                x = self.activation(x)
        return x


class BatchNorm(Module):
    """Batch normalization over every axis but the last, with running statistics in state.

    In training, inputs are normalized with the batch's mean and variance, and the running
    statistics move towards them: ``mean = decay * mean + (1 - decay) * batch_mean``. In
    evaluation, the running statistics are used and the state is left as it is. The running
    mean and variance start at 0 and 1 and live in state as ``mean`` and ``var``; the learned
    ``scale`` and ``offset`` are parameters. Use it under :func:`purenn.transform_with_state`.

    Args:
        decay: how much of the running statistics each training step keeps.
        eps: added to the variance before taking its square root.
        name: the module's name; defaults to ``"batch_norm"``.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> model = purenn.transform_with_state(lambda x: purenn.BatchNorm()(x, True))
        >>> params, state = model.init(None, jnp.ones((4, 3)))
        >>> print(jax.tree.map(jnp.shape, params))
        {'batch_norm': {'offset': (3,), 'scale': (3,)}}
        >>> print(jax.tree.map(jnp.shape, state))
        {'batch_norm': {'mean': (3,), 'var': (3,)}}
    """

    def __init__(self, decay: float = 0.9, eps: float = 1e-5, name: str | None = None):
        super().__init__(name=name)
        self.decay = decay
        self.eps = eps

    def __call__(self, x: jax.Array, is_training: bool) -> jax.Array:
        """Normalize ``x``, updating the running statistics if ``is_training``.

        Args:
            x: an array of shape ``(batch..., features)``.
            is_training: use and update batch statistics (True) or use the running ones.

        Returns:
            The normalized, scaled and shifted array, of the shape of ``x``.

        Example:
            >>> import jax, jax.numpy as jnp, purenn
            >>> model = purenn.transform_with_state(lambda x, t: purenn.BatchNorm()(x, t))
            >>> x = jnp.array([[0.0], [2.0]])
            >>> params, state = model.init(None, x, True)
            >>> out, _ = model.apply(params, state, None, x, True)
            >>> out.round(3).tolist()
            [[-1.0], [1.0]]
        """
        features = x.shape[-1:]
        mean = get_state("mean", features, init=jnp.zeros)
        var = get_state("var", features, init=jnp.ones)
        if is_training:
            axes = tuple(range(x.ndim - 1))
            batch_mean, batch_var = x.mean(axis=axes), x.var(axis=axes)
            set_state("mean", self.decay * mean + (1 - self.decay) * batch_mean)
            set_state("var", self.decay * var + (1 - self.decay) * batch_var)
            mean, var = batch_mean, batch_var
        scale = get_parameter("scale", features, init=jnp.ones)
        offset = get_parameter("offset", features, init=jnp.zeros)
        return (x - mean) * jax.lax.rsqrt(var + self.eps) * scale + offset


class Dropout(Module):
    """Zero each element with probability ``rate`` in training, scaling the rest by 1/(1-rate).

    The scaling keeps the expected value of each element unchanged, so evaluation is the
    identity. The mask uses :func:`purenn.next_rng_key`, so apply needs a key in training.

    Args:
        rate: the probability of dropping an element, in ``[0, 1)``.
        name: the module's name; defaults to ``"dropout"``.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> model = purenn.transform(lambda x: purenn.Dropout(0.5)(x, True))
        >>> out = model.apply({}, jax.random.key(0), jnp.ones(1000))
        >>> sorted(set(out.tolist()))
        [0.0, 2.0]
    """

    def __init__(self, rate: float, name: str | None = None):
        super().__init__(name=name)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}.")
        self.rate = rate

    def __call__(self, x: jax.Array, is_training: bool) -> jax.Array:
        """Drop elements of ``x`` if ``is_training``; otherwise return ``x`` unchanged.

        Args:
            x: any array.
            is_training: whether to drop elements.

        Returns:
            An array of the shape of ``x``.

        Example:
            >>> import jax, jax.numpy as jnp, purenn
            >>> model = purenn.transform(lambda x: purenn.Dropout(0.5)(x, False))
            >>> model.apply({}, None, jnp.ones(3)).tolist()
            [1.0, 1.0, 1.0]
        """
        if not is_training or self.rate == 0.0:
            return x
        keep = jax.random.bernoulli(next_rng_key(), 1.0 - self.rate, x.shape)
        return jnp.where(keep, x / (1.0 - self.rate), jnp.zeros_like(x))
