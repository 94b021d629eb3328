"""Turn functions that use modules into pure ``init``/``apply`` pairs, the way Haiku does.

Inside a function passed to :func:`transform`, modules call :func:`get_parameter`,
:func:`next_rng_key`, :func:`get_state` and :func:`set_state` as if parameters were global.
They are not: ``init`` and ``apply`` push a frame holding the params, state and key they were
given, run the function, and pop the frame. The results are ordinary pure functions of plain
nested dicts, ``{module_name: {name: array}}``, ready for ``jax.jit``, ``jax.grad`` and optax.

Naming scheme: a module is named after its class in snake_case (``Linear`` is ``linear``,
``BatchNorm`` is ``batch_norm``) or after its ``name=`` argument. A second module with the
same name in the same scope gets a counter: ``linear``, ``linear_1``, ``linear_2``. A module
created while a method (``__init__``, ``__call__`` or any public method) of another module runs
lives inside it, and its full name joins the two with ``/``: ``mlp/linear``, ``mlp/linear_1``.
Parameters created outside any module belong to the module name ``~``.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from purenn._describe import describe
from purenn.frames import Frame, current_frame, frame_scope, module_scope, trace_state

Params = Mapping[str, Mapping[str, jax.Array]]
State = Mapping[str, Mapping[str, jax.Array]]
Initializer = Callable[[tuple[int, ...], Any], jax.Array]

_TOP_LEVEL = "~"
_JITTED_TYPE = type(jax.jit(lambda: None))


class TransformError(Exception):
    """Base of every error purenn raises for misuse of :func:`transform` and its helpers.

    Also raised as is when something runs in the wrong place: outside a transform, state
    under plain :func:`transform`, or a JAX transformation applied inside the model.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> from purenn import TransformError
        >>> try:
        ...     purenn.get_parameter("w", (2,), init=jnp.zeros)
        ... except TransformError as err:
        ...     print("wrap your model with purenn.transform(f)" in str(err))
        True
    """


class TransformTypeError(TransformError, TypeError):
    """An argument of the wrong kind: params that are not a mapping, a bad key, a jitted model.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> from purenn import TransformTypeError
        >>> model = purenn.transform(lambda x: purenn.Linear(2)(x))
        >>> try:
        ...     model.apply([1.0], None, jnp.ones(3))
        ... except TransformTypeError as err:
        ...     print("as returned by init" in str(err))
        True
    """


class MissingParameterError(TransformError, LookupError):
    """A parameter or state entry the model reads is not in what ``apply`` was given.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> from purenn import MissingParameterError
        >>> model = purenn.transform(lambda x: purenn.Linear(2)(x))
        >>> try:
        ...     model.apply({}, None, jnp.ones(3))
        ... except MissingParameterError as err:
        ...     print("'linear'" in str(err))
        True
    """


class ShapeMismatchError(TransformError, ValueError):
    """A parameter or state entry has a different shape from the one the model asks for.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> from purenn import ShapeMismatchError
        >>> model = purenn.transform(lambda x: purenn.Linear(2)(x))
        >>> params = model.init(jax.random.key(0), jnp.ones(3))
        >>> try:
        ...     model.apply(params, None, jnp.ones(5))
        ... except ShapeMismatchError as err:
        ...     print("re-run init" in str(err))
        True
    """


class MissingRngError(TransformError, ValueError):
    """Randomness was needed but ``init`` or ``apply`` was given ``rng=None``.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> from purenn import MissingRngError
        >>> model = purenn.transform(lambda x: purenn.Linear(2)(x))
        >>> try:
        ...     model.init(None, jnp.ones(3))
        ... except MissingRngError as err:
        ...     print("jax.random.key(0)" in str(err))
        True
    """


def _frame_or_raise(what: str) -> Frame:
    frame = current_frame()
    if frame is None:
        raise TransformError(
            f"{what} inside a function passed to purenn.transform (or "
            "purenn.transform_with_state); wrap your model with purenn.transform(f) and call "
            ".init / .apply, e.g. params = model.init(jax.random.key(0), x)."
        )
    return frame


def _check_same_trace(frame: Frame, what: str) -> None:
    # A value created under a JAX transformation that began inside the model (for instance
    # transform(jax.jit(f))) would be stored in the frame and outlive that transformation as
    # a leaked tracer, or be baked into jit's cache and silently ignore the params.
    if trace_state() != frame.trace:
        raise TransformError(
            f"{what} ran under a JAX transformation (jax.jit, jax.vmap, jax.grad, lax.scan, ...) "
            "applied inside the function passed to purenn.transform; its value would leak out "
            "as a tracer. Transform first and apply JAX transformations to the results instead, "
            "e.g. jax.jit(model.init) and jax.jit(model.apply), not purenn.transform(jax.jit(f))."
        )


def _module_name_of(module: Any) -> str:
    try:
        return module.module_name
    except AttributeError:
        raise TransformError(
            f"{type(module).__name__} has no module name yet: its __init__ must call "
            "super().__init__(name=name) before creating parameters, state or sub-modules."
        ) from None


def _current_module_name(frame: Frame) -> str:
    return _module_name_of(frame.module_stack[-1]) if frame.module_stack else _TOP_LEVEL


def _snake_case(class_name: str) -> str:
    words = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", class_name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", words).lower()


def _scoped(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Module, *args: Any, **kwargs: Any) -> Any:
        with module_scope(self):
            return method(self, *args, **kwargs)

    return wrapper


class Module:
    """Base class for modules: named objects that own parameters.

    A module is named after its class in snake_case (or ``name=``), with a counter when that
    name is taken (``linear_1``), under the full name of the module whose method created it
    (``mlp/linear``). Subclasses call ``super().__init__(name=name)`` first in ``__init__``,
    then create parameters with :func:`get_parameter` in ``__call__`` (or any public method).
    Modules can only be created inside a function passed to :func:`transform`.

    Args:
        name: the module's own name; defaults to the class name in snake_case. Must be a
            Python identifier, since ``/`` separates the levels of nested names.

    Attributes:
        name: the module's own name, with a counter if that name was taken (``linear_1``).
        module_name: the full name, the key of this module's entry in params (``mlp/linear``).

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> class Scale(purenn.Module):
        ...     def __call__(self, x):
        ...         return x * purenn.get_parameter("s", x.shape[-1:], init=jnp.ones)
        >>> def forward(x):
        ...     return Scale()(Scale()(x))
        >>> params = purenn.transform(forward).init(None, jnp.ones(3))
        >>> print(jax.tree.map(jnp.shape, params))
        {'scale': {'s': (3,)}, 'scale_1': {'s': (3,)}}
    """

    name: str
    module_name: str

    def __init__(self, name: str | None = None):
        frame = _frame_or_raise(f"{type(self).__name__}(...) must be created")
        if name is not None and not name.isidentifier():
            raise ValueError(
                f"Module name {name!r} is not a Python identifier; pick a name such as "
                "'encoder' ('/' is reserved for joining nested module names)."
            )
        # Subclass __init__ wrappers push the module itself, so its parent is the nearest
        # other module on the stack.
        parent = next((m for m in reversed(frame.module_stack) if m is not self), None)
        scope = "" if parent is None else _module_name_of(parent)
        self.name = frame.unique_name(scope, name or _snake_case(type(self).__name__))
        self.module_name = f"{scope}/{self.name}" if scope else self.name

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        for attr, value in list(vars(cls).items()):
            if inspect.isfunction(value) and (
                attr in ("__init__", "__call__") or not attr.startswith("_")
            ):
                setattr(cls, attr, _scoped(value))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(module_name={getattr(self, 'module_name', None)!r})"


def _lookup(tree: Mapping[str, Mapping[str, Any]], module: str, name: str, source: str) -> Any:
    entries = tree.get(module)
    if entries is not None and name in entries:
        return entries[name]
    kind = "parameter" if source == "params" else "state entry"
    where = (
        f"it has entries for modules {sorted(tree)}"
        if entries is None
        else f"module {module!r} there has {sorted(entries)}"
    )
    raise MissingParameterError(
        f"{kind} {name!r} of module {module!r} is not in the {source} passed to apply ({where}). "
        f"The {source} were probably made by another model, or by init called differently; use "
        f"the {source} returned by .init of this same transformed function, called the same way."
    )


def _check_shape(
    value: Any, shape: tuple[int, ...], module: str, name: str, frame: Frame, kind: str
) -> Any:
    if tuple(value.shape) != shape:
        hint = (
            "the module was called again with inputs of another shape; a module's parameters "
            "keep one shape, so create a separate module for the other input"
            if frame.is_init
            else "they were made by init with differently shaped inputs or other layer sizes; "
            "re-run init with inputs shaped like the ones you apply to, or fix the layer sizes"
        )
        raise ShapeMismatchError(
            f"{kind} {name!r} of module {module!r} has shape {tuple(value.shape)} but the model "
            f"asks for shape {shape}: {hint}."
        )
    return value


def get_parameter(
    name: str,
    shape: Sequence[int],
    dtype: Any = jnp.float32,
    init: Initializer | None = None,
) -> jax.Array:
    """Create (during init) or read (during apply) a parameter of the current module.

    Args:
        name: the parameter's name within its module, e.g. ``"w"``.
        shape: its shape; checked against what init created or apply was given.
        dtype: its dtype when created.
        init: called as ``init(shape, dtype)`` to create the value during init. Random
            initializers draw their key with :func:`next_rng_key`.

    Returns:
        The parameter's value.

    Raises:
        TransformError: if called outside a function passed to :func:`transform`.
        MissingParameterError: if apply's params have no such parameter.
        ShapeMismatchError: if the parameter exists with another shape.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> def forward(x):
        ...     return x + purenn.get_parameter("bias", x.shape, init=jnp.zeros)
        >>> model = purenn.transform(forward)
        >>> params = model.init(None, jnp.ones(2))
        >>> params
        {'~': {'bias': Array([0., 0.], dtype=float32)}}
        >>> model.apply(params, None, jnp.ones(2)).tolist()
        [1.0, 1.0]
    """
    frame = _frame_or_raise("purenn.get_parameter must be called")
    module = _current_module_name(frame)
    shape = tuple(int(d) for d in shape)
    if not frame.is_init:
        value = _lookup(frame.params, module, name, "params")
        return _check_shape(value, shape, module, name, frame, "parameter")
    entries = frame.params.setdefault(module, {})
    if name not in entries:
        if init is None:
            raise TransformTypeError(
                f"purenn.get_parameter({name!r}) in module {module!r} needs init= to create the "
                "parameter; pass an initializer called as init(shape, dtype), e.g. init=jnp.zeros."
            )
        _check_same_trace(frame, f"purenn.get_parameter({name!r}) in module {module!r}")
        entries[name] = init(shape, dtype)
    return _check_shape(entries[name], shape, module, name, frame, "parameter")


def next_rng_key() -> jax.Array:
    """Return a fresh PRNG key, split deterministically from the key given to init/apply.

    Returns:
        A key; each call in one ``init`` or ``apply`` returns a different one.

    Raises:
        TransformError: if called outside a function passed to :func:`transform`.
        MissingRngError: if init/apply was given ``rng=None``.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> model = purenn.transform(lambda: jax.random.normal(purenn.next_rng_key(), (2,)))
        >>> first = model.apply({}, jax.random.key(1))
        >>> bool((first == model.apply({}, jax.random.key(1))).all())
        True
    """
    frame = _frame_or_raise("purenn.next_rng_key must be called")
    if frame.rng is None:
        if frame.caller == "init":
            fix = "model.init(jax.random.key(0), x)."
        else:
            state = "state, " if frame.with_state else ""
            fix = (
                f"model.apply(params, {state}jax.random.key(0), x); an apply made by "
                "without_apply_rng takes no key, so use the one from purenn.transform, or avoid "
                "randomness at apply time (e.g. Dropout(rate)(x, is_training=False))."
            )
        raise MissingRngError(
            f"purenn.next_rng_key needs a random key but {frame.caller} was called with "
            f"rng=None. Pass one, e.g. {fix}"
        )
    _check_same_trace(frame, "purenn.next_rng_key()")
    return frame.next_key()


def _state_frame(what: str) -> Frame:
    frame = _frame_or_raise(f"{what} must be called")
    if not frame.with_state:
        raise TransformError(
            f"{what} was called inside a function passed to purenn.transform, which has no "
            "state. Use purenn.transform_with_state(f) instead: its init returns (params, state) "
            "and its apply is called as out, state = model.apply(params, state, rng, x)."
        )
    return frame


def get_state(
    name: str,
    shape: Sequence[int] | None = None,
    dtype: Any = jnp.float32,
    init: Initializer | None = None,
) -> jax.Array:
    """Create (during init) or read the current value of a state entry of the current module.

    State is for values that change as the model runs, such as batch-norm statistics; use
    it under :func:`transform_with_state`. The entries that exist are fixed by init.

    Args:
        name: the entry's name within its module.
        shape: its shape; required to create it, checked when given.
        dtype: its dtype when created.
        init: called as ``init(shape, dtype)`` to create the value during init.

    Returns:
        The entry's current value: the latest :func:`set_state` value in this call, if any.

    Raises:
        TransformError: outside a transform, or under plain :func:`transform`.
        MissingParameterError: if apply's state has no such entry.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> def count():
        ...     n = purenn.get_state("n", (), jnp.int32, init=jnp.zeros)
        ...     purenn.set_state("n", n + 1)
        ...     return n
        >>> model = purenn.transform_with_state(count)
        >>> params, state = model.init(None)
        >>> out, state = model.apply(params, state, None)
        >>> out, state = model.apply(params, state, None)
        >>> int(out), int(state["~"]["n"])
        (1, 2)
    """
    frame = _state_frame("purenn.get_state")
    module = _current_module_name(frame)
    current = frame.state.get(module, {})
    if name in current:
        value = current[name]
    elif not frame.is_init:
        value = _lookup(frame.state, module, name, "state")
    elif shape is None or init is None:
        raise TransformTypeError(
            f"purenn.get_state({name!r}) in module {module!r} needs shape= and init= to create "
            "the entry during init, e.g. purenn.get_state(name, (3,), init=jnp.zeros)."
        )
    else:
        _check_same_trace(frame, f"purenn.get_state({name!r}) in module {module!r}")
        value = init(tuple(shape), dtype)
        _store_state(frame, module, name, value)
    if shape is not None:
        _check_shape(value, tuple(shape), module, name, frame, "state entry")
    return value


def set_state(name: str, value: Any) -> None:
    """Set a state entry of the current module; ``apply`` returns the last value set.

    Args:
        name: the entry's name within its module.
        value: its new value. During init, the first value set becomes the initial state.

    Raises:
        TransformError: outside a transform, or under plain :func:`transform`.
        MissingParameterError: during apply, if init did not create the entry.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> def remember(x):
        ...     purenn.set_state("last", x)
        ...     return x
        >>> model = purenn.transform_with_state(remember)
        >>> params, state = model.init(None, jnp.zeros(2))
        >>> _, state = model.apply(params, state, None, jnp.ones(2))
        >>> state["~"]["last"].tolist()
        [1.0, 1.0]
    """
    frame = _state_frame("purenn.set_state")
    module = _current_module_name(frame)
    if not frame.is_init:
        _lookup(frame.state, module, name, "state")
    _check_same_trace(frame, f"purenn.set_state({name!r}) in module {module!r}")
    _store_state(frame, module, name, value)


def _store_state(frame: Frame, module: str, name: str, value: Any) -> None:
    frame.state.setdefault(module, {})[name] = value
    if frame.is_init:
        # init returns the state as first created, so that init has no training side effects.
        frame.initial_state.setdefault(module, {}).setdefault(name, value)


class Transformed(NamedTuple):
    """The pure pair made by :func:`transform`.

    Attributes:
        init: ``params = init(rng, *args, **kwargs)``.
        apply: ``out = apply(params, rng, *args, **kwargs)``.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> model = purenn.transform(lambda x: purenn.Linear(2)(x))
        >>> isinstance(model, purenn.Transformed), model._fields
        (True, ('init', 'apply'))
    """

    init: Callable[..., Params]
    apply: Callable[..., Any]


class TransformedWithState(NamedTuple):
    """The pure pair made by :func:`transform_with_state`.

    Attributes:
        init: ``params, state = init(rng, *args, **kwargs)``.
        apply: ``out, state = apply(params, state, rng, *args, **kwargs)``.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> model = purenn.transform_with_state(lambda x: purenn.BatchNorm()(x, True))
        >>> isinstance(model, purenn.TransformedWithState), model._fields
        (True, ('init', 'apply'))
    """

    init: Callable[..., tuple[Params, State]]
    apply: Callable[..., tuple[Any, State]]


def _as_key(rng: Any, signature: str) -> Any:
    if rng is None:
        return None
    if isinstance(rng, int):
        return jax.random.key(rng)
    dtype, shape = getattr(rng, "dtype", None), getattr(rng, "shape", None)
    if dtype is not None and shape is not None:
        if jnp.issubdtype(dtype, jax.dtypes.prng_key) and shape == ():
            return rng
        if dtype == jnp.uint32 and tuple(shape) == (2,):
            return rng
        if jnp.issubdtype(dtype, jnp.integer) and shape == ():
            return jax.random.key(rng)
    hint = ""
    if signature.startswith("apply"):
        hint = "; for an apply that takes no key, use purenn.without_apply_rng(model)"
    raise TransformTypeError(
        f"rng must be a PRNG key such as jax.random.key(0), an int seed, or None, but got "
        f"{describe(rng)}. The call is {signature}{hint}."
    )


def _check_tree(tree: Any, what: str, signature: str) -> None:
    if not isinstance(tree, Mapping) or not all(isinstance(v, Mapping) for v in tree.values()):
        raise TransformTypeError(
            f"apply expected {what} to be a mapping {{module_name: {{name: array}}}} as returned "
            f"by init, but got {describe(tree)}. Pass what .init returned, in the order "
            f"{signature}."
        )


def _check_transformable(f: Any, caller: str) -> None:
    if not callable(f):
        raise TransformTypeError(f"{caller} expects a function, but got {describe(f)}.")
    while isinstance(f, functools.partial):
        f = f.func
    if isinstance(f, _JITTED_TYPE):
        raise TransformTypeError(
            f"{caller} was given a function already wrapped in jax.jit. Its cached trace would "
            "bake in the parameters made by init and ignore the params passed to apply. Pass "
            f"the plain function and jit the results instead: model = {caller}(f), then "
            "jax.jit(model.init) and jax.jit(model.apply)."
        )


def _pure_pair(f: Callable[..., Any], with_state: bool) -> TransformedWithState:
    state_arg = "state, " if with_state else ""
    signature = f"apply(params, {state_arg}rng, *args)"

    def init(rng: Any, *args: Any, **kwargs: Any) -> tuple[dict, dict]:
        frame = Frame(
            caller="init",
            is_init=True,
            with_state=with_state,
            params={},
            state={},
            initial_state={},
            rng=_as_key(rng, "init(rng, *args)"),
        )
        with frame_scope(frame):
            f(*args, **kwargs)
        return frame.params, frame.initial_state

    def apply(params: Params, state: State, rng: Any, *args: Any, **kwargs: Any) -> Any:
        _check_tree(params, "params", signature)
        _check_tree(state, "state", signature)
        frame = Frame(
            caller="apply",
            is_init=False,
            with_state=with_state,
            params=params,
            # A copy, so that set_state leaves the caller's state as it was.
            state={module: dict(entries) for module, entries in state.items()},
            initial_state={},
            rng=_as_key(rng, signature),
        )
        with frame_scope(frame):
            out = f(*args, **kwargs)
        return out, frame.state

    return TransformedWithState(init, apply)


def transform(f: Callable[..., Any]) -> Transformed:
    """Turn a function that uses modules into a pure ``(init, apply)`` pair.

    Transform first, then apply JAX transformations to the results: ``jax.jit(model.apply)``
    works, while ``transform(jax.jit(f))`` raises :class:`TransformTypeError`.

    Args:
        f: a function that creates modules and calls them, e.g. ``lambda x: MLP([8, 1])(x)``.

    Returns:
        A :class:`Transformed`: ``params = init(rng, *args)`` runs ``f`` to create the
        parameters, and ``apply(params, rng, *args)`` runs ``f`` with them.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> model = purenn.transform(lambda x: purenn.MLP([4, 2])(x))
        >>> params = model.init(jax.random.key(0), jnp.ones((5, 3)))
        >>> print(jax.tree.map(jnp.shape, params))
        {'mlp/linear': {'b': (4,), 'w': (3, 4)}, 'mlp/linear_1': {'b': (2,), 'w': (4, 2)}}
        >>> jax.jit(model.apply)(params, None, jnp.ones((5, 3))).shape
        (5, 2)
    """
    _check_transformable(f, "purenn.transform")
    init_with_state, apply_with_state = _pure_pair(f, with_state=False)

    def init(rng: Any, *args: Any, **kwargs: Any) -> Params:
        return init_with_state(rng, *args, **kwargs)[0]

    def apply(params: Params, rng: Any, *args: Any, **kwargs: Any) -> Any:
        return apply_with_state(params, {}, rng, *args, **kwargs)[0]

    return Transformed(init, apply)


def transform_with_state(f: Callable[..., Any]) -> TransformedWithState:
    """Like :func:`transform`, for functions that use :func:`get_state` and :func:`set_state`.

    Args:
        f: a function that creates modules and calls them.

    Returns:
        A :class:`TransformedWithState`: ``params, state = init(rng, *args)`` and
        ``out, new_state = apply(params, state, rng, *args)``. Init returns each state entry
        as first created; apply returns new dicts and leaves the state passed in unchanged.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> model = purenn.transform_with_state(lambda x, t: purenn.BatchNorm()(x, t))
        >>> x = jnp.arange(6.0).reshape(3, 2)
        >>> params, state = model.init(None, x, True)
        >>> out, new_state = model.apply(params, state, None, x, True)
        >>> [round(float(m), 2) for m in new_state["batch_norm"]["mean"]]
        [0.2, 0.3]
    """
    _check_transformable(f, "purenn.transform_with_state")
    return _pure_pair(f, with_state=True)


def without_apply_rng(transformed: Transformed | TransformedWithState) -> Any:
    """Drop the ``rng`` argument of ``apply``, for models that use no randomness there.

    Args:
        transformed: the result of :func:`transform` or :func:`transform_with_state`.

    Returns:
        The same kind of pair, whose apply is ``apply(params, *args)`` (or
        ``apply(params, state, *args)``) and runs with ``rng=None``.

    Example:
        >>> import jax, jax.numpy as jnp, purenn
        >>> model = purenn.without_apply_rng(purenn.transform(lambda x: purenn.Linear(2)(x)))
        >>> params = model.init(jax.random.key(0), jnp.ones(3))
        >>> model.apply(params, jnp.ones(3)).shape
        (2,)
    """
    if isinstance(transformed, TransformedWithState):
        apply_with_state = transformed.apply

        def apply_state(params: Params, state: State, *args: Any, **kwargs: Any) -> Any:
            return apply_with_state(params, state, None, *args, **kwargs)

        return TransformedWithState(transformed.init, apply_state)
    if isinstance(transformed, Transformed):
        apply_rng = transformed.apply

        def apply(params: Params, *args: Any, **kwargs: Any) -> Any:
            return apply_rng(params, None, *args, **kwargs)

        return Transformed(transformed.init, apply)
    raise TransformTypeError(
        f"without_apply_rng expects the result of purenn.transform or "
        f"purenn.transform_with_state, but got {describe(transformed)}; call "
        "purenn.without_apply_rng(purenn.transform(f))."
    )
