"""Tests of purenn.parallel.

This process has one CPU device, and the number of CPU devices must be set before JAX starts
its backend, so the multi-device checks run in a subprocess with 8 simulated devices. It
prints one JSON line of results, which the tests below read.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purenn.data import Examples
from purenn.parallel import (
    batch_mesh,
    batch_sharding,
    per_device,
    put_batch,
    put_replicated,
    replicate,
    shard_batch,
    unreplicate,
)

DEVICES = 8

SCRIPT = textwrap.dedent(
    f"""
    import json

    import jax

    jax.config.update("jax_num_cpu_devices", {DEVICES})

    import jax.numpy as jnp
    import numpy as np
    import optax

    import purenn
    from purenn.data import Examples, batches, load_digits
    from purenn.layers import mlp_apply, mlp_init
    from purenn.parallel import (
        batch_mesh, make_pmap_train_step, make_sharded_train_step, put_batch,
        put_replicated, replicate, shard_batch, unreplicate,
    )
    from purenn.training import classification_loss, fit, make_train_step, stateless

    def max_difference(a, b):
        pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        return max(float(jnp.max(jnp.abs(x - y))) for x, y in pairs)

    results = {{"device_count": jax.device_count()}}
    train = load_digits().train
    optimizer = optax.adamw(1e-3, weight_decay=1e-4)

    @stateless
    def loss_fn(params, batch):
        return classification_loss(mlp_apply(params, batch.images), batch.labels)

    params = mlp_init(jax.random.key(0), [64, 64, 10])
    opt_state = optimizer.init(params)
    single = make_train_step(loss_fn, optimizer)
    pmapped = make_pmap_train_step(loss_fn, optimizer)
    mesh = batch_mesh()
    sharded = make_sharded_train_step(loss_fn, optimizer, mesh)

    one = (params, {{}}, opt_state)
    per_device = (replicate(params), replicate({{}}), replicate(opt_state))
    on_mesh = (put_replicated(params, mesh), {{}}, put_replicated(opt_state, mesh))
    steps = 0
    for batch in batches(train, 128, jax.random.key(1)):
        *one, m1 = single(*one, batch)
        *per_device, mp = pmapped(*per_device, shard_batch(batch))
        *on_mesh, ms = sharded(*on_mesh, put_batch(batch, mesh))
        steps += 1
    results["steps"] = steps
    results["pmap_params"] = max_difference(one[0], unreplicate(per_device[0]))
    results["pmap_opt_state"] = max_difference(one[2], unreplicate(per_device[2]))
    results["states_empty"] = one[1] == per_device[1] == on_mesh[1] == {{}}
    results["pmap_copies_identical"] = all(
        bool((leaf == leaf[0]).all()) for leaf in jax.tree.leaves(per_device[0])
    )
    results["pmap_param_shape"] = list(per_device[0][0]["w"].shape)
    results["pmap_loss"] = abs(float(m1["loss"]) - float(mp["loss"][0]))
    results["sharded_params"] = max_difference(one[0], on_mesh[0])
    results["sharded_loss"] = abs(float(m1["loss"]) - float(ms["loss"]))
    results["sharded_replicated"] = all(
        leaf.sharding.is_fully_replicated for leaf in jax.tree.leaves(on_mesh[0])
    )
    results["params_moved"] = max_difference(params, one[0])
    # Where the last batch lived: one block of rows per device, each the rows it should hold.
    placed = put_batch(batch, mesh)
    shards = placed.images.addressable_shards
    results["batch_shards"] = [
        [shard.index[0].start, shard.index[0].stop, shard.data.shape[0],
         bool(np.array_equal(shard.data, np.asarray(batch.images)[shard.index]))]
        for shard in sorted(shards, key=lambda shard: shard.index[0].start)
    ]
    results["batch_shard_devices"] = len({{shard.device for shard in shards}})

    # The sharded step as a drop-in for fit, with host batches, against the single device.
    fit_kwargs = dict(epochs=2, batch_size=64, key=jax.random.key(2), log=None)
    fit_one = fit(single, params, opt_state, train, **fit_kwargs)
    fit_mesh = fit(sharded, put_replicated(params, mesh), put_replicated(opt_state, mesh),
                   train, **fit_kwargs)
    results["fit_params"] = max_difference(fit_one.params, fit_mesh.params)
    results["fit_loss"] = abs(fit_one.history["loss"][-1] - fit_mesh.history["loss"][-1])

    # A model with state: BatchNorm sees the whole batch's statistics under sharded jit.
    def forward(x, is_training):
        x = purenn.Linear(32, with_bias=False)(x)
        return purenn.Linear(10)(jax.nn.relu(purenn.BatchNorm()(x, is_training)))

    model = purenn.without_apply_rng(purenn.transform_with_state(forward))
    bn_params, bn_state = model.init(jax.random.key(0), train.images[:8], True)

    def bn_loss(params, state, batch):
        logits, state = model.apply(params, state, batch.images, True)
        loss, metrics = classification_loss(logits, batch.labels)
        return loss, (metrics, state)

    bn_single = make_train_step(bn_loss, optimizer)
    bn_sharded = make_sharded_train_step(bn_loss, optimizer, mesh)
    bn_pmapped = make_pmap_train_step(bn_loss, optimizer)
    carry = (bn_params, bn_state, optimizer.init(bn_params))
    carry_mesh = tuple(put_replicated(tree, mesh) for tree in carry)
    carry_pmap = tuple(replicate(tree) for tree in carry)
    for batch in batches(train, 128, jax.random.key(3)):
        *carry, _ = bn_single(*carry, batch)
        *carry_mesh, _ = bn_sharded(*carry_mesh, batch)
        *carry_pmap, _ = bn_pmapped(*carry_pmap, shard_batch(batch))
    results["bn_sharded_params"] = max_difference(carry[0], carry_mesh[0])
    results["bn_sharded_state"] = max_difference(carry[1], carry_mesh[1])
    results["bn_pmap_copies_identical"] = all(
        bool((leaf == leaf[0]).all()) for leaf in jax.tree.leaves(carry_pmap[:2])
    )

    # Batches that do not divide over the devices.
    odd = Examples(train.images[:100], train.labels[:100])
    for name, call in [("shard_batch", lambda: shard_batch(odd)),
                       ("put_batch", lambda: put_batch(odd, mesh))]:
        try:
            call()
            results[name + "_error"] = None
        except ValueError as err:
            results[name + "_error"] = str(err)
    print(json.dumps(results))
    """
)


# One test worker runs the whole module (pytest -n, --dist loadgroup), so the eight-device
# subprocess below starts once.
pytestmark = pytest.mark.xdist_group("eight-devices")


# Session-scoped, though only this module uses it: under pytest -n, tests of other modules
# can run between this module's, and pytest would tear a module fixture down each time.
@pytest.fixture(scope="session")
def eight_devices() -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_subprocess_has_eight_devices(eight_devices):
    assert eight_devices["device_count"] == DEVICES
    assert eight_devices["steps"] == 1437 // 128
    assert eight_devices["params_moved"] > 1e-3  # training did change the parameters
    assert eight_devices["states_empty"]  # a model without state keeps {} through every step


def test_pmap_step_equals_single_device_step(eight_devices):
    assert eight_devices["pmap_params"] < 1e-5
    assert eight_devices["pmap_opt_state"] < 1e-5
    assert eight_devices["pmap_loss"] < 1e-5
    assert eight_devices["pmap_copies_identical"]
    assert eight_devices["pmap_param_shape"] == [DEVICES, 64, 64]


def test_sharded_step_equals_single_device_step(eight_devices):
    # The batch really is split: 8 devices each hold their own 16 of the 128 rows.
    rows = 128 // DEVICES
    expected = [[k * rows, (k + 1) * rows, rows, True] for k in range(DEVICES)]
    assert eight_devices["batch_shards"] == expected
    assert eight_devices["batch_shard_devices"] == DEVICES
    assert eight_devices["sharded_params"] < 1e-5
    assert eight_devices["sharded_loss"] < 1e-5
    assert eight_devices["sharded_replicated"]


def test_sharded_step_is_a_drop_in_for_fit(eight_devices):
    assert eight_devices["fit_params"] < 1e-5
    assert eight_devices["fit_loss"] < 1e-5


def test_steps_with_state(eight_devices):
    # Under jit the batch statistics are those of the whole batch, as on one device.
    assert eight_devices["bn_sharded_params"] < 1e-4
    assert eight_devices["bn_sharded_state"] < 1e-5
    # Under pmap each device normalizes its own share; the averaged state keeps the copies equal.
    assert eight_devices["bn_pmap_copies_identical"]


def test_uneven_batches_get_a_clear_error(eight_devices):
    for name in ("shard_batch", "put_batch"):
        message = eight_devices[name + "_error"]
        assert message is not None, f"{name} accepted 100 examples on 8 devices"
        assert "A batch of 100 examples does not split evenly over 8 devices" in message
        assert "multiple of 8 (e.g. 96 or 104)" in message


# One-device checks of the helpers, in this process.


def test_replicate_and_unreplicate_round_trip():
    tree = {"w": jnp.arange(6.0).reshape(2, 3), "step": jnp.array(3)}
    copies = replicate(tree)
    assert copies["w"].shape == (jax.local_device_count(), 2, 3)
    back = unreplicate(copies)
    np.testing.assert_array_equal(back["w"], tree["w"])
    assert int(back["step"]) == 3


def test_shard_batch_reshapes_every_leaf():
    batch = Examples(np.zeros((12, 64), np.float32), np.arange(12))
    sharded = shard_batch(batch, num_devices=4)
    assert sharded.images.shape == (4, 3, 64)
    assert sharded.labels.tolist() == np.arange(12).reshape(4, 3).tolist()


def test_shard_batch_errors():
    with pytest.raises(ValueError, match=r"multiple of 4 \(e.g. 8 or 12\)"):
        shard_batch({"x": np.zeros((10, 2))}, num_devices=4)
    with pytest.raises(ValueError, match=r"multiple of 4 \(e.g. 4\)"):
        shard_batch({"x": np.zeros((3, 2))}, num_devices=4)
    with pytest.raises(ValueError, match="same leading"):
        shard_batch({"x": np.zeros((4, 2)), "y": np.zeros(8)}, num_devices=4)


def test_per_device_names_the_split_it_could_not_make():
    assert per_device(12, 4) == 3
    with pytest.raises(ValueError, match=r"over 2 processes × 3 devices = 6 devices.*126 or 132"):
        per_device(128, 6, over="2 processes × 3 devices")


def test_mesh_helpers_on_one_device():
    mesh = batch_mesh()
    assert mesh.axis_names == ("batch",) and mesh.size == jax.device_count()
    params = put_replicated({"w": jnp.ones((2, 2))}, mesh)
    assert params["w"].sharding.is_fully_replicated
    batch = put_batch(Examples(np.zeros((4, 64), np.float32), np.arange(4)), mesh)
    assert batch.images.shape == (4, 64)
    assert batch.labels.sharding.spec == jax.sharding.PartitionSpec(("batch",))
    assert batch.labels.sharding == batch_sharding(mesh)
