"""purenn: neural networks as pure functions of their parameters.

The small library behind the Just After eXecution site. Every page of the site runs against
it, so what it shows is what this code does. It has two ways to write a model:

- :mod:`purenn.layers`: plain ``init``/``apply`` function pairs over dicts of arrays;
- :func:`purenn.transform`: write the model as if parameters were created on the fly, and get
  back a pure ``(init, apply)`` pair, as in Haiku.

Example:
    >>> import jax, jax.numpy as jnp
    >>> import purenn
    >>> model = purenn.transform(lambda x: purenn.Linear(2)(x))
    >>> params = model.init(jax.random.key(0), jnp.ones((1, 3)))
    >>> {name: sorted(leaves) for name, leaves in params.items()}
    {'linear': ['b', 'w']}
"""

from purenn import data, distributed, frames, layers, parallel, timing, training
from purenn._transform import (
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
    next_rng_key,
    set_state,
    transform,
    transform_with_state,
    without_apply_rng,
)
from purenn.modules import MLP, BatchNorm, Dropout, Linear

__all__ = [
    "MLP",
    "BatchNorm",
    "Dropout",
    "Linear",
    "MissingParameterError",
    "MissingRngError",
    "Module",
    "ShapeMismatchError",
    "TransformError",
    "TransformTypeError",
    "Transformed",
    "TransformedWithState",
    "data",
    "distributed",
    "frames",
    "get_parameter",
    "get_state",
    "layers",
    "next_rng_key",
    "parallel",
    "set_state",
    "timing",
    "training",
    "transform",
    "transform_with_state",
    "without_apply_rng",
]
__version__ = "0.1.0"
