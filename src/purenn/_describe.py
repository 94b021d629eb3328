"""How error messages name the value they were given."""

from typing import Any


def describe(value: Any) -> str:
    """Name a value for an error message: its shape and dtype if it is an array, else its type.

    Example:
        >>> import jax.numpy as jnp
        >>> from purenn._describe import describe
        >>> describe(jnp.zeros((2, 3))), describe([1, 2])
        ('an array of shape (2, 3) and dtype float32', 'an object of type list')
    """
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"an array of shape {tuple(shape)} and dtype {dtype}"
    return f"an object of type {type(value).__name__}"
