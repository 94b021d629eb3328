import time

import jax
import jax.numpy as jnp
import pytest

from purenn.timing import Timing, environment, environment_summary, format_seconds, measure


def test_measure_reports_first_min_and_median_per_call():
    # A function of known duration: 0.2 s on its first call, 0.02 s on every later one.
    calls = []

    def known(x):
        time.sleep(0.2 if not calls else 0.02)
        calls.append(None)
        return x

    timing = measure(known, jnp.ones(3), repeats=4, number=3)
    assert isinstance(timing, Timing)
    assert (timing.repeats, timing.number) == (4, 3)
    assert len(calls) == 1 + 4 * 3  # the first call, then 4 repeats of 3 calls
    # Sleep never returns early, so the lower bounds are exact; the upper bounds leave room for
    # a busy machine while still ruling out a total not divided by the 3 calls (0.06 s).
    assert 0.2 <= timing.first < 1.0
    assert 0.02 <= timing.min <= timing.median < 0.045


def test_measure_waits_for_asynchronous_results():
    # A large product is dispatched asynchronously; if measure did not block on the result it
    # would report the dispatch time, far below the time the product really takes.
    product = jax.jit(lambda m: m @ m)
    m = jnp.ones((1000, 1000))
    product(m).block_until_ready()
    start = time.perf_counter()
    for _ in range(3):
        product(m).block_until_ready()
    blocked = (time.perf_counter() - start) / 3
    timing = measure(product, m, repeats=3, number=1)
    assert timing.median > blocked / 5


def test_first_call_includes_compilation():
    calls = []

    def traced(x):
        calls.append(None)  # runs only while jax traces
        return jnp.sin(x) * 2

    timing = measure(jax.jit(traced), jnp.ones(10), repeats=2)
    assert len(calls) == 1, "tracing must happen once, in the first call"
    assert timing.first > timing.min


def test_measure_chooses_calls_per_repeat_from_the_target_duration():
    timing = measure(lambda: time.sleep(0.002), repeats=2, min_repeat_seconds=0.02)
    assert timing.number >= 5
    assert timing.min >= 0.002


def test_measure_passes_keyword_arguments():
    seen = {}

    def fn(x, *, scale):
        seen["scale"] = scale
        return x * scale

    measure(fn, jnp.ones(3), scale=4.0, repeats=1, number=1)
    assert seen["scale"] == 4.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"repeats": 0}, "repeats must be at least 1"),
        ({"number": 0}, "number must be at least 1"),
    ],
)
def test_measure_rejects_bad_counts_with_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        measure(jnp.sin, jnp.ones(2), **kwargs)
    assert "pass" in str(error.value)


def test_format_seconds_picks_a_readable_unit():
    assert format_seconds(1.5) == "1.50 s"
    assert format_seconds(0.25) == "250 ms"
    assert format_seconds(3.21e-5) == "32.1 µs"
    assert format_seconds(7e-9) == "7.00 ns"
    assert format_seconds(0.0) == "0 ns"


def test_environment_describes_this_process():
    env = environment()
    assert env["jax"] == jax.__version__
    assert env["backend"] == jax.default_backend()
    assert env["device_count"] == jax.device_count() >= 1
    assert env["device_kind"] == jax.devices()[0].device_kind
    assert env["process_count"] == 1
    assert env["cpu_count"] >= 1
    assert f"jax {jax.__version__}" in environment_summary()
