"""The errors tinyjax raises for misuse, each naming what went wrong and how to fix it.

Every class derives from :class:`TinyJaxError` and from the built-in exception a Python
programmer would expect (``TypeError``, ``ValueError``, ``NotImplementedError``), so either
can be caught.
"""


class TinyJaxError(Exception):
    """Base of every error tinyjax raises on purpose.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> try:
        ...     tj.add(np.ones(2, np.float32), np.ones(3, np.float32))
        ... except tj.TinyJaxError as err:
        ...     print(type(err).__name__)
        ShapeError
    """


class ShapeError(TinyJaxError, TypeError):
    """A primitive got operands whose shapes or dtypes it cannot combine.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> try:
        ...     tj.mul(np.ones(2, np.float32), np.ones(3, np.float32))
        ... except tj.ShapeError as err:
        ...     print(err)
        mul needs operands of one shape and dtype, got f32[2] and f32[3]; broadcast one first.
    """


class MissingRuleError(TinyJaxError, NotImplementedError):
    """A transform met a primitive it has no rule for.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> from tinyjax.core import Primitive
        >>> tanh_p = Primitive("tanh", np.tanh, lambda x: x)
        >>> try:
        ...     tj.jvp(tanh_p.bind, (np.float32(1.0),), (np.float32(1.0),))
        ... except tj.MissingRuleError as err:
        ...     print(str(err).splitlines()[0])
        jvp has no rule for the primitive 'tanh'.
    """


class ConcretizationError(TinyJaxError, TypeError):
    """Python needed a concrete value (``if``, ``bool``, ``float``) where only a shape is known.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> def relu(x):
        ...     return x if x > 0 else -x
        >>> try:
        ...     tj.jit(relu)(np.float32(2.0))
        ... except tj.ConcretizationError as err:
        ...     print("tinyjax.select" in str(err))
        True
    """


class InAxesError(TinyJaxError, ValueError):
    """``vmap``'s ``in_axes`` does not fit the arguments it was called with.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> try:
        ...     tj.vmap(tj.add, in_axes=(0,))(np.ones(2, np.float32), np.ones(2, np.float32))
        ... except tj.InAxesError as err:
        ...     print(str(err).split(";")[0])
        vmap got in_axes=(0,) with 1 entries for 2 arguments
    """


class GradOutputError(TinyJaxError, TypeError):
    """``grad`` was given a function whose output is not a real scalar.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> try:
        ...     tj.grad(tj.sin)(np.ones(3, np.float32))
        ... except tj.GradOutputError as err:
        ...     print(str(err).split(";")[0])
        grad needs a function with a real scalar output, got f32[3]
    """


class EscapedTracerError(TinyJaxError, RuntimeError):
    """A tracer was used after the transform that made it had finished.

    Example:
        >>> import numpy as np
        >>> import tinyjax as tj
        >>> saved = []
        >>> _ = tj.jit(lambda x: saved.append(x) or x)(np.float32(1.0))
        >>> try:
        ...     tj.sin(saved[0])
        ... except tj.EscapedTracerError as err:
        ...     print(str(err).split(";")[0])
        a tracer of a finished jit was used after it returned
    """
