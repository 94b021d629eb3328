"""One MLP train step, written six ways, timed against each other.

The step: a 64-512-512-10 ReLU MLP on a batch of 256 digits images, softmax cross-entropy,
optax.adam(1e-3), parameters and optimizer state in, new ones out. Implementations:

  (a) jax.jit over a hand-written dict of arrays (the baseline)
  (b) purenn.transform with purenn.MLP
  (c) purenn.layers (mlp_init / mlp_apply)
  (d) dm-haiku (hk.transform with hk.nets.MLP)
  (e) Flax NNX with nnx.jit and nnx.Optimizer
  (e') Flax NNX through nnx.split / nnx.merge and a plain jax.jit
  (f) PyTorch eager on the CPU, if torch is installed

The timed repeats are interleaved across implementations (a, b, c, ..., then b, c, ..., a, and
so on), so that a slow moment of a shared machine hits all of them alike; the table reports
medians. (a) to (d) run one step, purenn.training.make_train_step, around their own apply
functions, so they differ only in how the model is written. The compiled programs of (a), (b)
and (c) are also compared: their jaxprs, flattened to the sequence of primitives, are identical
when the two libraries add nothing to the step.

`--repeats`, `--steps` and `--batch` shrink the run (e.g. to check the script works); the
defaults are the measurement.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import purenn
from purenn.data import load_digits
from purenn.layers import mlp_apply, mlp_init
from purenn.timing import environment_summary, format_seconds
from purenn.training import make_train_step

SIZES = [64, 512, 512, 10]
BATCH = 256
LEARNING_RATE = 1e-3
STEPS_PER_REPEAT = 10
REPEATS = 21


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def jitted_step(apply_fn: Callable, optimizer: optax.GradientTransformation) -> Callable:
    """purenn's train step, shared by every JAX implementation but NNX; only apply_fn differs."""

    def loss_fn(params, state, batch):
        x, y = batch
        return cross_entropy(apply_fn(params, x), y), ({}, state)

    return make_train_step(loss_fn, optimizer)


class Implementation:
    """A step with its own carried state, advanced `steps` times per call of run()."""

    def __init__(self, name: str, run: Callable[[int], Any], note: str = ""):
        self.name = name
        self.run = run
        self.note = note
        self.seconds_per_step: list[float] = []


def carry_runner(step: Callable, params: Any, opt_state: Any, x: Any, y: Any) -> Callable:
    carry = [params, {}, opt_state]

    def run(steps: int) -> Any:
        for _ in range(steps):
            *advanced, metrics = step(*carry, (x, y))
            carry[:] = advanced
        return jax.block_until_ready(metrics["loss"])

    return run


# --- (a) hand-written --------------------------------------------------------------------


def handwritten(x, y, optimizer):
    keys = jax.random.split(jax.random.key(0), 3)
    init = jax.nn.initializers.lecun_normal()
    names = ["hidden1", "hidden2", "output"]  # sorted order is layer order
    params = {
        name: {"w": init(key, (fan_in, fan_out)), "b": jnp.zeros(fan_out)}
        for name, key, fan_in, fan_out in zip(names, keys, SIZES[:-1], SIZES[1:], strict=True)
    }

    def apply(params, x):
        h = jax.nn.relu(x @ params["hidden1"]["w"] + params["hidden1"]["b"])
        h = jax.nn.relu(h @ params["hidden2"]["w"] + params["hidden2"]["b"])
        return h @ params["output"]["w"] + params["output"]["b"]

    step = jitted_step(apply, optimizer)
    return step, params


# --- (b) purenn.transform ------------------------------------------------------------------


def purenn_transform(x, y, optimizer):
    model = purenn.without_apply_rng(purenn.transform(lambda x: purenn.MLP(SIZES[1:])(x)))
    params = model.init(jax.random.key(0), x)
    return jitted_step(model.apply, optimizer), params


# --- (c) purenn.layers ---------------------------------------------------------------------


def purenn_layers(x, y, optimizer):
    params = mlp_init(jax.random.key(0), SIZES)
    return jitted_step(mlp_apply, optimizer), params


# --- (d) dm-haiku --------------------------------------------------------------------------


def haiku(x, y, optimizer):
    import haiku as hk

    model = hk.without_apply_rng(hk.transform(lambda x: hk.nets.MLP(SIZES[1:])(x)))
    params = model.init(jax.random.key(0), x)
    return jitted_step(model.apply, optimizer), params


# --- (e) Flax NNX --------------------------------------------------------------------------


def nnx_model():
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.layers = nnx.List(
                [nnx.Linear(a, b, rngs=rngs) for a, b in zip(SIZES[:-1], SIZES[1:], strict=True)]
            )

        def __call__(self, x):
            for layer in self.layers[:-1]:
                x = jax.nn.relu(layer(x))
            return self.layers[-1](x)

    return MLP(nnx.Rngs(0))


def flax_nnx(x, y):
    from flax import nnx

    model = nnx_model()
    optimizer = nnx.Optimizer(model, optax.adam(LEARNING_RATE), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, x, y):
        def loss_fn(model):
            return cross_entropy(model(x), y)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    def run(steps: int) -> Any:
        for _ in range(steps):
            loss = step(model, optimizer, x, y)
        return jax.block_until_ready(loss)

    return run


def flax_nnx_split(x, y):
    from flax import nnx

    model = nnx_model()
    optimizer = nnx.Optimizer(model, optax.adam(LEARNING_RATE), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))

    @jax.jit
    def step(state, x, y):
        model, optimizer = nnx.merge(graphdef, state)

        def loss_fn(model):
            return cross_entropy(model(x), y)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), loss

    carry = [state]

    def run(steps: int) -> Any:
        for _ in range(steps):
            carry[0], loss = step(carry[0], x, y)
        return jax.block_until_ready(loss)

    return run


# --- (f) PyTorch ---------------------------------------------------------------------------


def pytorch(x, y):
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:], strict=True)):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if index < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    tx, ty = torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(y)).long()

    def run(steps: int) -> Any:
        for _ in range(steps):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(tx), ty)
            loss.backward()
            optimizer.step()
        return float(loss)

    return run


# --- jaxpr comparison ----------------------------------------------------------------------


def primitive_sequence(jaxpr: Any) -> list[str]:
    """The primitives of a jaxpr in order, descending into every nested jaxpr."""
    names = []
    for eqn in jaxpr.eqns:
        names.append(eqn.primitive.name)
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else [param]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    names.extend(primitive_sequence(inner))
    return names


def matmul_gflops_per_second() -> float:
    n = 2048
    a = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(2), (n, n), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    jax.block_until_ready(matmul(a, b))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        jax.block_until_ready(matmul(a, b))
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive_int, default=REPEATS, help="timed rounds")
    parser.add_argument(
        "--steps", type=positive_int, default=STEPS_PER_REPEAT, help="steps per timed round"
    )
    parser.add_argument("--batch", type=positive_int, default=BATCH, help="images per step")
    args = parser.parse_args(argv)
    repeats, steps_per_repeat, batch = args.repeats, args.steps, args.batch
    total_start = time.perf_counter()
    print(environment_summary())
    print(
        f"MLP {'-'.join(map(str, SIZES))}, batch {batch}, optax.adam({LEARNING_RATE:g}); "
        f"{repeats} interleaved repeats of {steps_per_repeat} steps each\n"
    )
    train = load_digits().train
    x, y = jnp.asarray(train.images[:batch]), jnp.asarray(train.labels[:batch])
    optimizer = optax.adam(LEARNING_RATE)

    jax_steps = {}
    implementations = []
    for label, build in [
        ("(a) jax.jit, hand-written dicts", handwritten),
        ("(b) purenn.transform", purenn_transform),
        ("(c) purenn.layers", purenn_layers),
        ("(d) dm-haiku", haiku),
    ]:
        step, params = build(x, y, optimizer)
        opt_state = optimizer.init(params)
        jax_steps[label[:3]] = (step, params, opt_state)
        implementations.append(Implementation(label, carry_runner(step, params, opt_state, x, y)))
    implementations.append(Implementation("(e) flax nnx, nnx.jit", flax_nnx(x, y)))
    implementations.append(
        Implementation("(e') flax nnx, split/merge + jax.jit", flax_nnx_split(x, y))
    )
    torch_run = pytorch(x, y)
    if torch_run is not None:
        implementations.append(Implementation("(f) pytorch eager (cpu)", torch_run))

    # Compile (or warm up) everything, then time in interleaved rounds.
    for impl in implementations:
        impl.run(2)
    for round_index in range(repeats):
        # Each round starts with a different implementation, so none always goes first.
        shift = round_index % len(implementations)
        for impl in implementations[shift:] + implementations[:shift]:
            start = time.perf_counter()
            impl.run(steps_per_repeat)
            impl.seconds_per_step.append((time.perf_counter() - start) / steps_per_repeat)

    medians = {impl.name: statistics.median(impl.seconds_per_step) for impl in implementations}
    baseline = medians[implementations[0].name]
    width = max(len(impl.name) for impl in implementations)
    print(f"{'implementation':<{width}}  {'step (median)':>13}  {'steps/s':>8}  {'× (a)':>6}")
    print("-" * (width + 35))
    for impl in implementations:
        median = medians[impl.name]
        print(
            f"{impl.name:<{width}}  {format_seconds(median):>13}  {1 / median:>8.1f}  "
            f"{median / baseline:>6.3f}"
        )
    if torch_run is None:
        print("(f) pytorch: skipped, `import torch` failed (not installed)")

    # Arithmetic rate of (a): forward + backward matmuls, ~6 × batch × sum(in × out).
    flops = 6 * batch * sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:], strict=True))
    achieved = flops / baseline / 1e9
    peak = matmul_gflops_per_second()
    print(
        f"\n(a) does {flops / 1e6:.0f} MFLOP per step: {achieved:.1f} GFLOP/s, "
        f"{achieved / peak:.0%} of the {peak:.1f} GFLOP/s of a jitted 2048×2048 f32 matmul"
    )

    # Are (b) and (c) the same program as (a)?
    sequences = {
        name: primitive_sequence(jax.make_jaxpr(step)(params, {}, opt_state, (x, y)).jaxpr)
        for name, (step, params, opt_state) in jax_steps.items()
    }
    for name in ("(b)", "(c)", "(d)"):
        same = sequences[name] == sequences["(a)"]
        print(
            f"jaxpr primitives of {name} identical to (a)'s: {same} "
            f"({len(sequences[name])} vs {len(sequences['(a)'])} equations)"
        )

    names = [impl.name for impl in implementations]
    nnx_median = medians[names[4]]
    for name in names[1:3]:
        ratio = medians[name] / baseline
        print(
            f"{name}: {ratio:.3f}× (a) ({'within' if ratio <= 1.05 else 'NOT within'} 1.05×), "
            f"{'faster' if medians[name] < nnx_median else 'NOT faster'} than (e)"
        )
    print(f"\ntotal time {time.perf_counter() - total_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
