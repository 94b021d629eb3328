import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import purenn
from purenn.data import Examples, load_digits
from purenn.layers import mlp_apply, mlp_init
from purenn.training import (
    Evaluation,
    FitResult,
    classification_loss,
    evaluate,
    fit,
    make_train_step,
    stateless,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def batch(digits):
    return Examples(digits.train.images[:64], digits.train.labels[:64])


def plain_layers_loss(params, batch):
    return classification_loss(mlp_apply(params, batch.images), batch.labels)


layers_loss = stateless(plain_layers_loss)


# Compiling is most of the cost here, so the tests share one optimizer, model and step.
ADAM = optax.adam(1e-2)


@pytest.fixture(scope="module")
def layers_params():
    return mlp_init(jax.random.key(0), [64, 32, 10])


@pytest.fixture(scope="module")
def layers_step():
    return make_train_step(layers_loss, ADAM)


def _run(step, carry, batch, steps):
    losses = []
    for _ in range(steps):
        *carry, metrics = step(*carry, batch)
        losses.append(float(metrics["loss"]))
    return carry, losses


def test_classification_loss_matches_optax():
    logits = jax.random.normal(jax.random.key(0), (5, 3))
    labels = jnp.array([0, 2, 1, 1, 0])
    loss, metrics = classification_loss(logits, labels)
    expected = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    assert float(metrics["accuracy"]) == pytest.approx(
        float(np.mean(np.argmax(logits, -1) == labels))
    )
    smoothed, _ = classification_loss(logits, labels, label_smoothing=0.1)
    targets = optax.smooth_labels(jax.nn.one_hot(labels, 3), 0.1)
    np.testing.assert_allclose(
        smoothed, optax.softmax_cross_entropy(logits, targets).mean(), rtol=1e-6
    )


def test_step_with_layers_lowers_the_loss(batch, layers_params, layers_step):
    carry = (layers_params, {}, ADAM.init(layers_params))
    (params, state, _), losses = _run(layers_step, carry, batch, 20)
    assert state == {}
    assert losses[-1] < 0.5 * losses[0]
    assert isinstance(params, list) and params[0]["w"].shape == (64, 32)


def test_step_is_pure_and_jitted(batch, layers_params, layers_step):
    params, opt_state, step = layers_params, ADAM.init(layers_params), layers_step
    first = step(params, {}, opt_state, batch)
    second = step(params, {}, opt_state, batch)
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(a, b)
    assert hasattr(step, "lower")  # a jax.jit-ed function
    # Metrics: the loss before the update, and the loss function's own metrics.
    loss, metrics = jax.jit(plain_layers_loss)(params, batch)
    assert set(first[3]) == {"loss", "accuracy"}
    np.testing.assert_allclose(first[3]["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(first[3]["accuracy"], metrics["accuracy"])


def test_step_with_transform_lowers_the_loss(batch):
    model = purenn.without_apply_rng(purenn.transform(lambda x: purenn.MLP([32, 10])(x)))
    params = model.init(jax.random.key(0), batch.images)

    def loss_fn(params, batch):
        return classification_loss(model.apply(params, batch.images), batch.labels)

    optimizer = optax.adam(1e-2)
    step = make_train_step(stateless(loss_fn), optimizer)
    (params, _, _), losses = _run(step, (params, {}, optimizer.init(params)), batch, 20)
    assert losses[-1] < 0.5 * losses[0]
    assert sorted(params) == ["mlp/linear", "mlp/linear_1"]


def _batch_norm_model():
    def forward(x, is_training):
        x = purenn.Linear(32, with_bias=False)(x)
        x = jax.nn.relu(purenn.BatchNorm()(x, is_training))
        return purenn.Linear(10)(x)

    model = purenn.without_apply_rng(purenn.transform_with_state(forward))

    def train_loss(params, state, batch):
        logits, state = model.apply(params, state, batch.images, True)
        loss, metrics = classification_loss(logits, batch.labels)
        return loss, (metrics, state)

    def eval_loss(params, state, batch):
        logits, state = model.apply(params, state, batch.images, False)
        loss, metrics = classification_loss(logits, batch.labels)
        return loss, (metrics, state)

    return model, train_loss, eval_loss


def test_step_with_state_threads_batch_norm_statistics(batch):
    model, train_loss, _ = _batch_norm_model()
    params, state = model.init(jax.random.key(0), batch.images, True)
    optimizer = optax.adam(1e-2)
    step = make_train_step(train_loss, optimizer)
    carry = (params, state, optimizer.init(params))
    (params, new_state, _), losses = _run(step, carry, batch, 20)
    assert losses[-1] < 0.5 * losses[0]
    assert sorted(new_state) == ["batch_norm"]
    # The running mean moved from its initial zeros towards the batch statistics.
    assert float(jnp.abs(new_state["batch_norm"]["mean"]).max()) > 0.01
    np.testing.assert_array_equal(state["batch_norm"]["mean"], np.zeros(32))


def test_stateful_step_matches_a_hand_written_step(batch):
    model, train_loss, _ = _batch_norm_model()
    params, state = model.init(jax.random.key(0), batch.images, True)
    optimizer = optax.sgd(0.1)
    opt_state = optimizer.init(params)
    step = make_train_step(train_loss, optimizer)
    got_params, got_state, _, metrics = step(params, state, opt_state, batch)

    grads, (_, want_state) = jax.grad(train_loss, has_aux=True)(params, state, batch)
    want_params = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
    for got, want in [(got_params, want_params), (got_state, want_state)]:
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert set(metrics) == {"loss", "accuracy"}


def test_loss_fn_of_the_wrong_form_gets_a_clear_error(batch, layers_params):
    params, optimizer = layers_params, ADAM
    opt_state = optimizer.init(params)

    def bare_loss(params, batch):
        return plain_layers_loss(params, batch)[0]

    with pytest.raises(TypeError, match=r"must return \(loss, metrics\).*return loss, \{\}"):
        make_train_step(stateless(bare_loss), optimizer)(params, {}, opt_state, batch)

    def per_example_loss(params, batch):
        logits = mlp_apply(params, batch.images)
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch.labels), {}

    with pytest.raises(TypeError, match=r"scalar loss.*\.mean\(\)"):
        make_train_step(stateless(per_example_loss), optimizer)(params, {}, opt_state, batch)

    def unwrapped_loss(params, state, batch):
        return plain_layers_loss(params, batch)

    with pytest.raises(TypeError, match=r"stateless\(loss_fn\).*\(metrics, new_state\)"):
        make_train_step(unwrapped_loss, optimizer)(params, {}, opt_state, batch)

    def stateful_loss(params, batch):
        loss, metrics = plain_layers_loss(params, batch)
        return loss, (metrics, {})

    with pytest.raises(TypeError, match=r"already in the form.*without stateless"):
        make_train_step(stateless(stateful_loss), optimizer)(params, {}, opt_state, batch)

    bare_state_loss = stateless(lambda params, batch: (plain_layers_loss(params, batch)[0], 1.0))
    with pytest.raises(TypeError, match="metrics are an object of type float"):
        make_train_step(bare_state_loss, optimizer)(params, {}, opt_state, batch)


def test_evaluate_matches_the_loss_on_the_whole_split(digits, layers_params):
    params = layers_params
    metrics = evaluate(layers_loss, params, digits.test)
    loss, extra = jax.jit(plain_layers_loss)(params, digits.test)
    assert list(metrics) == ["loss", "accuracy"]
    assert metrics["loss"] == pytest.approx(float(loss), rel=1e-5)
    assert metrics["accuracy"] == pytest.approx(float(extra["accuracy"]))
    # In batches of 100 (the last one of 60), weighted by batch size: the same means.
    batched = evaluate(layers_loss, params, digits.test, batch_size=100)
    assert batched["loss"] == pytest.approx(metrics["loss"], rel=1e-5)
    assert batched["accuracy"] == pytest.approx(metrics["accuracy"])


def test_evaluate_with_state_and_errors(digits, layers_params):
    model, _, eval_loss = _batch_norm_model()
    params, state = model.init(jax.random.key(0), digits.test.images, True)
    metrics = evaluate(eval_loss, params, digits.test, state=state)
    loss, (direct, _) = eval_loss(params, state, digits.test)
    assert metrics == pytest.approx({"loss": float(loss), "accuracy": float(direct["accuracy"])})
    # In batches, the last one smaller, the means are weighted by batch size: the same values.
    batched = evaluate(eval_loss, params, digits.test, state=state, batch_size=100)
    assert len(digits.test.labels) % 100 != 0
    assert batched == pytest.approx(metrics, rel=1e-5)
    empty = Examples(np.zeros((0, 64), np.float32), np.zeros((0,), np.int32))
    with pytest.raises(ValueError, match="no examples"):
        evaluate(layers_loss, layers_params, empty)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        evaluate(layers_loss, layers_params, digits.test, batch_size=0)


def _small_fit(digits, params, step, **kwargs):
    return fit(
        step,
        params,
        ADAM.init(params),
        digits.train,
        epochs=3,
        batch_size=64,
        key=jax.random.key(1),
        **kwargs,
    )


def test_fit_prints_one_line_per_epoch_and_returns_history(
    digits, layers_params, layers_step, capsys
):
    result = _small_fit(
        digits, layers_params, layers_step, evaluation=Evaluation(layers_loss, digits.test)
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert isinstance(result, FitResult)
    history = result.history
    # Each line: the epoch of 3, every metric with its value as recorded, and the seconds.
    for epoch, line in enumerate(lines, start=1):
        assert re.search(rf"(?<!\d){epoch}\s*/\s*3\b", line), line
        for name in ("loss", "accuracy", "test_loss", "test_accuracy"):
            shown = re.search(rf"(?<!\w){name}\W+(\d+\.\d+)", line)
            assert shown, (name, line)
            assert float(shown.group(1)) == pytest.approx(history[name][epoch - 1], abs=5e-5)
        seconds = re.search(r"(\d+\.\d+)\s*s\b", line)
        assert seconds, line
        assert float(seconds.group(1)) == pytest.approx(history["seconds"][epoch - 1], abs=0.006)
    assert set(history) == {
        "loss",
        "accuracy",
        "seconds",
        "steps",
        "test_loss",
        "test_accuracy",
    }
    assert all(len(values) == 3 for values in history.values())
    assert history["steps"] == [22, 22, 22]
    assert history["loss"][-1] < history["loss"][0]
    assert history["test_accuracy"][-1] > 0.8
    final = evaluate(layers_loss, result.params, digits.test)
    assert final["accuracy"] == pytest.approx(history["test_accuracy"][-1])
    assert result.state == {}


def test_fit_is_deterministic_and_can_be_silent(digits, layers_params, layers_step, capsys):
    first = _small_fit(digits, layers_params, layers_step, log=None)
    second = _small_fit(digits, layers_params, layers_step, log=None)
    assert capsys.readouterr().out == ""
    for a, b in zip(jax.tree.leaves(first.params), jax.tree.leaves(second.params), strict=True):
        np.testing.assert_array_equal(a, b)
    assert first.history["loss"] == second.history["loss"]


def test_fit_with_state(digits, capsys):
    model, train_loss, eval_loss = _batch_norm_model()
    params, state = model.init(jax.random.key(0), digits.train.images[:8], True)
    optimizer = optax.adam(3e-3)
    step = make_train_step(train_loss, optimizer)
    result = fit(
        step,
        params,
        optimizer.init(params),
        digits.train,
        epochs=2,
        batch_size=256,
        key=jax.random.key(0),
        state=state,
        evaluation=Evaluation(eval_loss, digits.test, name="val"),
    )
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert "val_accuracy" in result.history
    assert not np.array_equal(result.state["batch_norm"]["var"], state["batch_norm"]["var"])


def test_fit_argument_errors(digits, layers_params, layers_step):
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        fit(None, None, None, digits.train, epochs=0, batch_size=8, key=jax.random.key(0))
    with pytest.raises(TypeError, match=r"must be a purenn.training.Evaluation.*Evaluation\("):
        _small_fit(digits, layers_params, layers_step, evaluation=(layers_loss, digits.test))
    with pytest.raises(ValueError, match="larger than the split"):
        fit(None, None, None, digits.test, epochs=1, batch_size=1000, key=jax.random.key(0))
