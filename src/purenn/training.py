"""Training as pure functions: a jitted train step built from a loss, a fit loop, evaluation.

A model is trained through one function, the *train step*: it takes the parameters, the
model state, the optimizer's state and a batch, and returns new parameters, a new model state,
a new optimizer state and some metrics. Nothing is updated in place, so the step can be
jitted, and the same loss function serves the single-device step here and the data-parallel
steps in :mod:`purenn.parallel`.

Every step has one form, with the model state (e.g. :class:`purenn.BatchNorm` statistics)
beside the parameters: ``step(params, state, opt_state, batch) -> (params, state, opt_state,
metrics)``. Its loss function returns the loss, a dict of metrics (means over the batch) and
the new state: ``loss_fn(params, state, batch) -> (loss, (metrics, new_state))``. A model
without state has ``state == {}``; :func:`stateless` adapts its ``loss_fn(params, batch) ->
(loss, metrics)`` to that form.

``params`` can be any pytree: the list of dicts from :mod:`purenn.layers`, or the nested dict
from :func:`purenn.transform`. The optimizer is any ``optax.GradientTransformation``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from purenn._describe import describe
from purenn.data import Examples, batches

__all__ = [
    "make_train_step",
    "stateless",
    "classification_loss",
    "fit",
    "Evaluation",
    "FitResult",
    "evaluate",
]

PyTree = Any
Metrics = dict[str, jax.Array]
LossFn = Callable[[PyTree, PyTree, PyTree], tuple[jax.Array, tuple[Any, PyTree]]]
TrainStep = Callable[[PyTree, PyTree, PyTree, PyTree], tuple[PyTree, PyTree, PyTree, Metrics]]


def classification_loss(
    logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0
) -> tuple[jax.Array, Metrics]:
    """Mean softmax cross-entropy of ``logits`` against integer ``labels``, and the accuracy.

    Its result has the ``(loss, metrics)`` form that :func:`make_train_step` expects, so a
    classifier's loss function is one line around the model.

    Args:
        logits: ``(batch, classes)`` unnormalized scores.
        labels: ``(batch,)`` integer classes.
        label_smoothing: the probability mass moved from the true class to all classes
            equally (``optax.smooth_labels``); 0 gives the plain cross-entropy. It discourages
            over-confident logits.

    Returns:
        ``(loss, {"accuracy": accuracy})``: the mean cross-entropy and the fraction of
        examples whose largest logit is the true class.

    Example:
        >>> import jax.numpy as jnp
        >>> from purenn.training import classification_loss
        >>> logits = jnp.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
        >>> loss, metrics = classification_loss(logits, jnp.array([0, 1, 1]))
        >>> round(float(loss), 3), round(float(metrics["accuracy"]), 3)
        (0.794, 0.667)
    """
    targets = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    if label_smoothing:
        targets = optax.smooth_labels(targets, label_smoothing)
    loss = optax.softmax_cross_entropy(logits, targets).mean()
    accuracy = (jnp.argmax(logits, axis=-1) == labels).mean()
    return loss, {"accuracy": accuracy}


def stateless(loss_fn: Callable[[PyTree, PyTree], tuple[jax.Array, Mapping[str, Any]]]) -> LossFn:
    """Adapt a loss of a model without state to the one form every train step takes.

    Every step and :func:`evaluate` call their loss function as ``loss_fn(params, state,
    batch) -> (loss, (metrics, new_state))``, with ``state == {}`` for a model without state,
    the way :func:`purenn.transform` is :func:`purenn.transform_with_state` with the state
    left out. This wraps ``loss_fn(params, batch) -> (loss, metrics)`` into that form; the
    state passes through unchanged.

    Args:
        loss_fn: ``loss_fn(params, batch) -> (loss, metrics)``.

    Returns:
        ``stateful(params, state, batch) -> (loss, (metrics, state))``.

    Example:
        >>> import jax.numpy as jnp
        >>> from purenn.training import stateless
        >>> loss = stateless(lambda params, batch: (jnp.sum(params * batch), {}))
        >>> loss(jnp.ones(2), {}, jnp.arange(2.0))
        (Array(1., dtype=float32), ({}, {}))
    """

    @functools.wraps(loss_fn)
    def with_state(
        params: PyTree, state: PyTree, batch: PyTree
    ) -> tuple[jax.Array, tuple[Any, PyTree]]:
        out = loss_fn(params, batch)
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], tuple):
            raise TypeError(
                "stateless(loss_fn) wraps a loss of the form (loss, metrics), but loss_fn "
                f"returned (loss, {describe(out[1])}) whose second item is a tuple, like "
                "(metrics, new_state). A loss with model state is already in the form the "
                "steps take: pass it without stateless(...)."
            )
        loss, metrics = _unpack_metrics(out, "stateless(loss_fn)'s loss_fn", "(loss, metrics)")
        return loss, (metrics, state)

    return with_state


def _unpack_metrics(out: Any, who: str, form: str) -> Any:
    """Check a ``(loss, metrics)`` pair and return it with the loss checked scalar."""
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(
            f"{who} must return {form}, with metrics a dict of scalars, but it returned "
            f"{describe(out)}. If there are no metrics, return loss, {{}}."
        )
    loss, metrics = out
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"{who} must return {form} with metrics a dict of scalars such as "
            f'{{"accuracy": acc}}, but the metrics are {describe(metrics)}.'
        )
    if jnp.shape(loss) != ():
        raise TypeError(
            f"{who} must return a scalar loss, but it has shape {jnp.shape(loss)}; reduce "
            "it over the batch, e.g. with .mean()."
        )
    return loss, metrics


def _unpack(out: Any) -> tuple[jax.Array, Mapping[str, Any], PyTree]:
    """Check a loss function's result and return ``(loss, metrics, new_state)``."""
    form = "(loss, (metrics, new_state))"
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(
            f"loss_fn must return {form}, but it returned {describe(out)}. A loss of a model "
            "without state, of the form (loss, metrics), goes in as stateless(loss_fn)."
        )
    loss, aux = out
    if not (isinstance(aux, tuple) and len(aux) == 2):
        raise TypeError(
            f"loss_fn must return {form}, but its second item is {describe(aux)}. For a "
            "model without state, wrap the loss as stateless(loss_fn); with state, return "
            "loss, (metrics, new_state)."
        )
    metrics, new_state = aux
    loss, metrics = _unpack_metrics((loss, metrics), "loss_fn", form)
    return loss, metrics, new_state


def _average_floats(tree: PyTree, axis_name: str) -> PyTree:
    """``lax.pmean`` of every floating-point leaf over ``axis_name``; other leaves unchanged."""
    return jax.tree.map(
        lambda x: jax.lax.pmean(x, axis_name) if jnp.issubdtype(x.dtype, jnp.inexact) else x,
        tree,
    )


def _step_function(
    loss_fn: LossFn, optimizer: optax.GradientTransformation, axis_name: str | None = None
) -> TrainStep:
    """The train step before any transformation; :mod:`purenn.parallel` reuses it.

    With ``axis_name``, the gradients, metrics and new state are averaged over that named
    axis (as ``jax.pmap`` provides) before the update, so every copy takes the same step.
    """

    def checked_loss(
        params: PyTree, state: PyTree, batch: PyTree
    ) -> tuple[jax.Array, tuple[Metrics, PyTree]]:
        loss, metrics, new_state = _unpack(loss_fn(params, state, batch))
        return loss, ({"loss": loss, **metrics}, new_state)

    grad_fn = jax.value_and_grad(checked_loss, has_aux=True)

    def step(
        params: PyTree, state: PyTree, opt_state: PyTree, batch: PyTree
    ) -> tuple[PyTree, PyTree, PyTree, Metrics]:
        (_, (metrics, new_state)), grads = grad_fn(params, state, batch)
        if axis_name is not None:
            grads, metrics, new_state = _average_floats((grads, metrics, new_state), axis_name)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_state, opt_state, metrics

    return step


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation) -> TrainStep:
    """Build a jitted, pure train step from a loss function and an optax optimizer.

    The step computes the loss and its gradient with ``jax.value_and_grad``, turns the
    gradient into updates with ``optimizer.update`` and applies them with
    ``optax.apply_updates``. It changes nothing in place: it returns new values. Every step
    has one form, with the model state beside the parameters; a model without state passes
    ``{}`` and gets ``{}`` back.

    Args:
        loss_fn: ``loss_fn(params, state, batch) -> (loss, (metrics, new_state))``, with
            ``loss`` a scalar and ``metrics`` a dict of scalars; ``batch`` is any pytree of
            arrays, e.g. :class:`purenn.data.Examples`. For a model without state, write
            ``loss_fn(params, batch) -> (loss, metrics)`` and pass ``stateless(loss_fn)``.
        optimizer: an ``optax.GradientTransformation``, e.g. ``optax.adam(1e-3)``.

    Returns:
        ``step(params, state, opt_state, batch) -> (params, state, opt_state, metrics)``.
        ``metrics`` holds ``"loss"`` and every metric of ``loss_fn``, computed with the
        parameters *before* the update.

    Raises:
        TypeError: when the step is first called, if ``loss_fn`` does not return the form
            above; the message shows the form expected.

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> from purenn.training import make_train_step, stateless
        >>> def loss_fn(params, batch):
        ...     x, y = batch
        ...     return jnp.mean((x * params["w"] - y) ** 2), {}
        >>> optimizer = optax.sgd(0.1)
        >>> step = make_train_step(stateless(loss_fn), optimizer)
        >>> params, state = {"w": jnp.array(0.0)}, {}
        >>> opt_state = optimizer.init(params)
        >>> batch = (jnp.array([1.0, 2.0]), jnp.array([2.0, 4.0]))
        >>> for _ in range(50):
        ...     params, state, opt_state, metrics = step(params, state, opt_state, batch)
        >>> round(float(params["w"]), 3), float(metrics["loss"]) < 1e-6
        (2.0, True)
    """
    return jax.jit(_step_function(loss_fn, optimizer))


def _scalar_means(metrics: Mapping[str, Any], weights: list[int]) -> dict[str, float]:
    """Average per-batch metric means over batches, weighting each by its size."""
    values = jax.device_get(metrics)
    # jit returns dicts with sorted keys; list the loss first, then the rest by name.
    return {
        name: float(np.average([np.mean(v) for v in values[name]], weights=weights))
        for name in sorted(values, key=lambda name: (name != "loss", name))
    }


def evaluate(
    loss_fn: LossFn,
    params: PyTree,
    examples: Examples,
    *,
    state: PyTree | None = None,
    batch_size: int | None = None,
) -> dict[str, float]:
    """Compute a loss function's loss and metrics over a whole split, without training.

    ``loss_fn`` is jitted here; jit caches its compilation by function, so pass the same
    function each time (not a new ``lambda``) to compile it once.

    Args:
        loss_fn: of the same form as for :func:`make_train_step`: ``loss_fn(params, state,
            batch) -> (loss, (metrics, new_state))`` (the new state is discarded), e.g.
            ``stateless(loss_fn)``. For a model whose training and evaluation differ
            (BatchNorm, Dropout), pass the evaluation version.
        params: the parameters to evaluate.
        examples: the split to evaluate on, in its own order.
        state: the model state; None (or ``{}``) for a model without state.
        batch_size: evaluate this many examples at a time (the last batch may be smaller);
            None evaluates the whole split in one call.

    Returns:
        ``{"loss": ..., **metrics}`` as Python floats, each the mean over all examples.

    Raises:
        ValueError: if ``examples`` is empty or ``batch_size`` is below 1.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from purenn.data import Examples
        >>> from purenn.training import classification_loss, evaluate, stateless
        >>> def loss_fn(params, batch):
        ...     return classification_loss(batch.images @ params, batch.labels)
        >>> examples = Examples(jnp.eye(2), jnp.array([0, 0]))
        >>> metrics = evaluate(stateless(loss_fn), jnp.eye(2), examples)
        >>> sorted(metrics), metrics["accuracy"]
        (['accuracy', 'loss'], 0.5)
    """
    count = len(examples.labels)
    if count == 0:
        raise ValueError(
            "evaluate was given a split with no examples; pass a split with at least one."
        )
    if batch_size is None:
        batch_size = count
    if batch_size < 1:
        raise ValueError(
            f"batch_size must be at least 1 (or None for the whole split), got {batch_size}."
        )
    state = {} if state is None else state
    run = jax.jit(loss_fn)
    per_batch: dict[str, list[Any]] = {}
    weights = []
    for start in range(0, count, batch_size):
        batch = jax.tree.map(lambda x, start=start: x[start : start + batch_size], examples)
        loss, metrics, _ = _unpack(run(params, state, batch))
        for name, value in {"loss": loss, **metrics}.items():
            per_batch.setdefault(name, []).append(value)
        weights.append(len(batch.labels))
    return _scalar_means(per_batch, weights)


class Evaluation(NamedTuple):
    """What :func:`fit` evaluates after every epoch.

    Attributes:
        loss_fn: a loss function of the form :func:`evaluate` takes.
        examples: the split it is evaluated on.
        name: the prefix of its metrics in the history and the log (``"test_loss"``, ...).

    Example:
        >>> import jax.numpy as jnp
        >>> from purenn.data import Examples
        >>> from purenn.training import Evaluation, classification_loss, stateless
        >>> loss_fn = stateless(lambda p, b: classification_loss(b.images @ p, b.labels))
        >>> Evaluation(loss_fn, Examples(jnp.eye(2), jnp.array([0, 1])), name="val").name
        'val'
    """

    loss_fn: LossFn
    examples: Examples
    name: str = "test"


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
        params: the trained parameters.
        state: the model state after the last step (``{}`` for a model without state).
        opt_state: the optimizer state after the last step.
        history: one list per metric, one value per epoch: the training metrics averaged
            over the epoch's steps (``"loss"``, ...), ``"seconds"`` (the epoch's training
            time, without evaluation; the first includes compilation), ``"steps"``, and,
            with an :class:`Evaluation`, its metrics prefixed with its name
            (``"test_loss"``, ...).

    Example:
        >>> from purenn.training import FitResult
        >>> FitResult._fields
        ('params', 'state', 'opt_state', 'history')
    """

    params: PyTree
    state: PyTree
    opt_state: PyTree
    history: dict[str, list[float]]


def _format_line(epoch: int, epochs: int, record: Mapping[str, float]) -> str:
    width = len(str(epochs))
    parts = [f"epoch {epoch:>{width}}/{epochs}"]
    for name, value in record.items():
        if name not in ("seconds", "steps"):
            parts.append(f"{name} {value:.4f}")
    parts.append(f"({record['seconds']:.2f} s)")
    return "  ".join(parts)


def fit(
    train_step: TrainStep,
    params: PyTree,
    opt_state: PyTree,
    train: Examples,
    *,
    epochs: int,
    batch_size: int,
    key: jax.Array,
    state: PyTree | None = None,
    evaluation: Evaluation | None = None,
    drop_remainder: bool = True,
    log: Callable[[str], Any] | None = print,
) -> FitResult:
    """Train for a number of epochs, printing one progress line per epoch.

    Each epoch shuffles ``train`` with ``jax.random.fold_in(key, epoch)`` (see
    :func:`purenn.data.batches`), runs ``train_step`` on every batch, averages the step
    metrics, and, with an ``evaluation``, evaluates on its split with :func:`evaluate`.
    The same arguments give the same result.

    Args:
        train_step: a step from :func:`make_train_step` (or :mod:`purenn.parallel`'s
            steps): ``step(params, state, opt_state, batch)``.
        params: the initial parameters.
        opt_state: the initial optimizer state, ``optimizer.init(params)``.
        train: the training split.
        epochs: the number of passes over ``train``.
        batch_size: the number of examples per step.
        key: the PRNG key that orders the batches.
        state: the initial model state; None (or ``{}``) for a model without state.
        evaluation: what to evaluate after every epoch, or None.
        drop_remainder: passed to :func:`purenn.data.batches`.
        log: called with each epoch's progress line; None prints nothing.

    Returns:
        A :class:`FitResult` with the final params, model state, optimizer state and the
        per-epoch history.

    Raises:
        ValueError: if ``epochs`` is below 1; and as :func:`purenn.data.batches` for a bad
            ``batch_size``.
        TypeError: if ``evaluation`` is not an :class:`Evaluation`.

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> from purenn.data import Examples
        >>> from purenn.training import classification_loss, fit, make_train_step, stateless
        >>> loss_fn = stateless(lambda p, b: classification_loss(b.images @ p, b.labels))
        >>> examples = Examples(jnp.eye(4), jnp.array([0, 1, 0, 1]))
        >>> optimizer = optax.sgd(1.0)
        >>> params = jnp.zeros((4, 2))
        >>> result = fit(make_train_step(loss_fn, optimizer), params, optimizer.init(params),
        ...              examples, epochs=3, batch_size=2, key=jax.random.key(0),
        ...              log=lambda line: print(line.split("  (")[0]))
        epoch 1/3  loss 0.6931  accuracy 0.5000
        epoch 2/3  loss 0.4741  accuracy 1.0000
        epoch 3/3  loss 0.3477  accuracy 1.0000
        >>> result.history["steps"]
        [2, 2, 2]
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    if evaluation is not None and not isinstance(evaluation, Evaluation):
        raise TypeError(
            f"evaluation must be a purenn.training.Evaluation, got {describe(evaluation)}; "
            "pass e.g. evaluation=Evaluation(loss_fn, digits.test)."
        )
    state = {} if state is None else state
    history: dict[str, list[float]] = {}
    for epoch in range(epochs):
        start = time.perf_counter()
        per_batch: dict[str, list[Any]] = {}
        weights = []
        epoch_key = jax.random.fold_in(key, epoch)
        for batch in batches(train, batch_size, epoch_key, drop_remainder):
            params, state, opt_state, metrics = train_step(params, state, opt_state, batch)
            for name, value in metrics.items():
                per_batch.setdefault(name, []).append(value)
            weights.append(len(batch.labels))
        record: dict[str, float] = _scalar_means(per_batch, weights)  # waits for the steps
        record["seconds"] = time.perf_counter() - start
        record["steps"] = len(weights)
        if evaluation is not None:
            results = evaluate(evaluation.loss_fn, params, evaluation.examples, state=state)
            record.update({f"{evaluation.name}_{name}": value for name, value in results.items()})
        for name, value in record.items():
            history.setdefault(name, []).append(value)
        if log is not None:
            log(_format_line(epoch + 1, epochs, record))
    return FitResult(params, state, opt_state, history)
