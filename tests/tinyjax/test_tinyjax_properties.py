"""Random straight-line programs: tinyjax's transforms, alone and in pairs, against JAX's.

Each example draws a program over all thirteen primitives with random shapes, runs it
through a chain of tinyjax transforms and through the same chain of JAX transforms (the
program written with `jax.lax`), and compares the results. The number of programs checked
and the largest difference seen are printed at the end of the run.
"""

import itertools
import math
from dataclasses import dataclass

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jax import lax

import tinyjax as tj

BATCH = 2
# Mixed absolute/relative error: |ours - jax| / (1 + |jax|). float32 rounding in NumPy and
# XLA differs by an ulp or so per operation, and derivatives of log and exp amplify it.
TOLERANCE = 2e-4
# Larger intermediate values make float32 rounding, not the transforms, the difference
# (sin of a large number, a difference of two large numbers).
MAX_MAGNITUDE = 30.0

TINY = {
    "add": tj.add,
    "mul": tj.mul,
    "neg": tj.neg,
    "sin": tj.sin,
    "cos": tj.cos,
    "exp": tj.exp,
    "log": tj.log,
    "max": tj.maximum,
    "greater": tj.greater,
    "select": tj.select,
    "reduce_sum": tj.reduce_sum,
    "broadcast": tj.broadcast,
    "transpose": tj.transpose,
}
LAX = {
    "add": lax.add,
    "mul": lax.mul,
    "neg": lax.neg,
    "sin": lax.sin,
    "cos": lax.cos,
    "exp": lax.exp,
    "log": lax.log,
    "max": lax.max,
    "greater": lax.gt,
    "select": lax.select,
    "reduce_sum": lax.reduce_sum,
    "broadcast": lax.broadcast_in_dim,
    "transpose": lax.transpose,
}
# What each tinyjax primitive is called in a jaxpr.
JAXPR_NAMES = {
    **{name: name for name in TINY},
    "greater": "gt",
    "select": "select_n",
    "broadcast": "broadcast_in_dim",
}


@dataclass(frozen=True)
class Step:
    op: str
    inputs: tuple[int, ...]
    params: tuple = ()  # extra positional arguments: axes, (shape, axes) or perm


@dataclass(frozen=True)
class RandomProgram:
    n_inputs: int
    shape: tuple[int, ...]
    steps: tuple[Step, ...]

    def run(self, ops, *args, everything=False):
        values = list(args)
        for step in self.steps:
            values.append(ops[step.op](*(values[i] for i in step.inputs), *step.params))
        return values if everything else values[-1]

    def __str__(self):
        names = [f"x{i}" for i in range(self.n_inputs)]
        lines = [f"inputs {', '.join(names)}: f32{list(self.shape)}"]
        for i, step in enumerate(self.steps, start=self.n_inputs):
            args = ", ".join(
                [
                    *(f"v{j}" if j >= self.n_inputs else f"x{j}" for j in step.inputs),
                    *map(str, step.params),
                ]
            )
            lines.append(f"v{i} = {step.op}({args})")
        return "\n".join(lines)


@st.composite
def random_programs(draw, max_steps=6):
    """A program whose every variable derives from its inputs; the last one is its output."""
    shape = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    n_inputs = draw(st.integers(1, 3))
    shapes, positive, steps = [shape] * n_inputs, [False] * n_inputs, []

    def pick(candidates):
        return draw(st.sampled_from(sorted(candidates, reverse=True)))  # shrinks to recent

    def emit(op, inputs, params, out_shape, out_positive=False):
        steps.append(Step(op, tuple(inputs), tuple(params)))
        shapes.append(out_shape)
        positive.append(out_positive)

    floats = lambda: [i for i, s in enumerate(shapes) if s is not None]  # noqa: E731
    for _ in range(draw(st.integers(1, max_steps))):
        op = draw(st.sampled_from(sorted(TINY)))
        a = pick(floats())
        like_a = [i for i in floats() if shapes[i] == shapes[a]]
        if op in ("neg", "sin", "cos", "exp"):
            emit(op, [a], [], shapes[a], op == "exp")
        elif op == "log":
            if not any(positive[i] for i in floats()):
                emit("exp", [a], [], shapes[a], True)  # give log something positive to read
            a = pick([i for i in floats() if positive[i]])
            emit("log", [a], [], shapes[a])
        elif op in ("add", "mul", "max"):
            b = pick(like_a)
            emit(op, [a, b], [], shapes[a], positive[a] and positive[b])
        elif op in ("greater", "select"):
            b, on_true, on_false = pick(like_a), pick(like_a), pick(like_a)
            emit("greater", [a, b], [], None)  # a bool: only select reads it
            pred = len(shapes) - 1
            emit(
                "select",
                [pred, on_true, on_false],
                [],
                shapes[a],
                positive[on_true] and positive[on_false],
            )
        elif op == "reduce_sum" and shapes[a]:
            axes = draw(st.lists(st.integers(0, len(shapes[a]) - 1), min_size=1, unique=True))
            out = tuple(d for i, d in enumerate(shapes[a]) if i not in axes)
            emit(op, [a], [tuple(sorted(axes))], out, positive[a])
        elif op == "broadcast" and len(shapes[a]) <= 2:
            where = draw(st.integers(0, len(shapes[a])))
            out = (*shapes[a][:where], draw(st.integers(1, 3)), *shapes[a][where:])
            axes = tuple(i for i in range(len(out)) if i != where)
            emit(op, [a], [out, axes], out, positive[a])
        elif op == "transpose" and len(shapes[a]) >= 2:
            perm = tuple(draw(st.permutations(range(len(shapes[a])))))
            if perm != tuple(range(len(perm))):  # JAX drops an identity transpose
                emit(op, [a], [perm], tuple(shapes[a][p] for p in perm), positive[a])
    if shapes[-1] is None or not steps:
        emit("sin", [floats()[-1]], [], shapes[floats()[-1]])
    return RandomProgram(n_inputs, shape, tuple(steps))


# --- Transforms as function-to-function adapters, the same chain in both worlds --------------


def tangent_pattern(shape, i):
    """A fixed tangent per argument, varied across elements so that mixing them up shows."""
    return np.cos(np.arange(math.prod(shape)) + 1.3 * i).reshape(shape).astype(np.float32)


def jvp_adapter(jvp):
    def adapt(f, argnum):
        def tangent_out(*xs):
            tangents = [tangent_pattern(x.shape, i) for i, x in enumerate(xs)]
            return jvp(f, tuple(xs), tuple(tangents))[1]

        return tangent_out

    return adapt


def grad_adapter(grad, sum_all):
    def adapt(f, argnum):
        return grad(lambda *xs: sum_all(f(*xs)), argnums=argnum)

    return adapt


OURS = {
    "jvp": jvp_adapter(tj.jvp),
    "vmap": lambda f, argnum: tj.vmap(f),
    "jit": lambda f, argnum: tj.jit(f),
    "grad": grad_adapter(tj.grad, tj.reduce_sum),
}
THEIRS = {
    "jvp": jvp_adapter(jax.jvp),
    "vmap": lambda f, argnum: jax.vmap(f),
    "jit": lambda f, argnum: jax.jit(f),
    "grad": grad_adapter(jax.grad, lambda y: lax.reduce_sum(y, tuple(range(y.ndim)))),
}
CHAINS = [(), *((name,) for name in OURS), *itertools.product(OURS, repeat=2)]


def apply_chain(chain, adapters, f, argnum):
    for name in reversed(chain):  # ("grad", "vmap") is grad(vmap(f))
        f = adapters[name](f, argnum)
    return f


# --- What the run saw, reported at the end ---------------------------------------------------


@dataclass
class Summary:
    programs: int = 0
    largest_difference: float = 0.0
    where: str = ""

    def record(self, check, ours, theirs):
        ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
        assert ours.shape == theirs.shape, f"{check}: shape {ours.shape} != JAX's {theirs.shape}"
        difference = float(np.max(np.abs(ours - theirs) / (1 + np.abs(theirs)), initial=0.0))
        self.programs += 1
        if difference > self.largest_difference:
            self.largest_difference, self.where = difference, check
        assert difference <= TOLERANCE, f"{check}: differs from JAX by {difference:.2e}"


SUMMARY = Summary()


@pytest.fixture(scope="module", autouse=True)
def report_summary(pytestconfig):
    yield
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and SUMMARY.programs:
        with capture.global_and_fixture_disabled():  # shown without -s too
            reporter.write_line(
                f"\ntinyjax against JAX: {SUMMARY.programs} random programs checked, largest "
                f"difference {SUMMARY.largest_difference:.2e} (|ours - jax| / (1 + |jax|), in "
                f"{SUMMARY.where})"
            )


PROPERTY = settings(
    max_examples=16,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def random_inputs(program, seed, batch_dims):
    rng = np.random.default_rng(seed)
    shape = (BATCH,) * batch_dims + program.shape
    return [rng.uniform(-1, 1, shape).astype(np.float32) for _ in range(program.n_inputs)]


def assume_tame(program, xs, batch_dims):
    """Skip programs that overflow, grow past what float32 compares well, or nearly tie.

    A near tie in `greater` or `max` lets one ulp of rounding pick the other branch, so
    NumPy and XLA would disagree about the program, not about the transform.
    """
    for index in itertools.product(range(BATCH), repeat=batch_dims):
        values = program.run(TINY, *(x[index] for x in xs), everything=True)
        assume(all(np.all(np.abs(np.asarray(v, np.float64)) < MAX_MAGNITUDE) for v in values))
        for step in program.steps:
            if step.op in ("greater", "max") and step.inputs[0] != step.inputs[1]:
                a, b = (values[i] for i in step.inputs)
                assume(np.all(np.abs(a - b) > 1e-3))


@pytest.mark.parametrize("chain", CHAINS, ids=lambda chain: "(".join(chain or ["eval"]) or "eval")
@PROPERTY
@given(program=random_programs(), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_transform_chain_matches_jax(chain, program, seed, data):
    xs = random_inputs(program, seed, chain.count("vmap"))
    assume_tame(program, xs, chain.count("vmap"))
    argnum = data.draw(st.integers(0, program.n_inputs - 1), label="argnum")
    theirs = apply_chain(chain, THEIRS, lambda *a: program.run(LAX, *a), argnum)(*xs)
    assume(np.all(np.isfinite(theirs)) and np.all(np.abs(theirs) < 1e4))
    ours = apply_chain(chain, OURS, lambda *a: program.run(TINY, *a), argnum)(*xs)
    SUMMARY.record("(".join(chain or ["eval"]) + ")" * len(chain), ours, theirs)


@st.composite
def in_axes_cases(draw):
    program = draw(random_programs())
    axes = [
        draw(st.one_of(st.none(), st.integers(0, len(program.shape))))
        for _ in range(program.n_inputs)
    ]
    if all(axis is None for axis in axes):
        axes[0] = 0
    return program, tuple(axes)


@settings(PROPERTY, max_examples=40)
@given(case=in_axes_cases(), seed=st.integers(0, 2**32 - 1))
def test_vmap_with_random_in_axes_matches_jax(case, seed):
    program, in_axes = case
    rng = np.random.default_rng(seed)
    xs = [
        rng.uniform(-1, 1, program.shape).astype(np.float32)
        if axis is None
        else np.moveaxis(rng.uniform(-1, 1, (BATCH, *program.shape)).astype(np.float32), 0, axis)
        for axis in in_axes
    ]
    fronted = [
        np.broadcast_to(x, (BATCH, *x.shape)) if a is None else np.moveaxis(x, a, 0)
        for x, a in zip(xs, in_axes, strict=True)
    ]
    assume_tame(program, fronted, 1)
    theirs = jax.vmap(lambda *a: program.run(LAX, *a), in_axes=in_axes)(*xs)
    ours = tj.vmap(lambda *a: program.run(TINY, *a), in_axes=in_axes)(*xs)
    SUMMARY.record(f"vmap(in_axes={in_axes})", ours, theirs)


@settings(max_examples=60, deadline=None)
@given(program=random_programs(max_steps=10))
def test_jit_program_has_the_primitives_of_jax_make_jaxpr(program):
    xs = [np.zeros(program.shape, np.float32)] * program.n_inputs
    ours = tj.make_program(lambda *a: program.run(TINY, *a), *xs)
    jaxpr = jax.make_jaxpr(lambda *a: program.run(LAX, *a))(*xs)
    assert len(ours.equations) == len(jaxpr.eqns) == len(program.steps)
    ours_names = [JAXPR_NAMES[eqn.primitive.name] for eqn in ours.equations]
    assert ours_names == [eqn.primitive.name for eqn in jaxpr.eqns]
