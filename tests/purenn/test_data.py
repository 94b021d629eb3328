import jax
import numpy as np
import pytest

from purenn import data
from purenn.data import Examples, batches, load_digits, steps_per_epoch


@pytest.fixture(scope="module")
def digits() -> data.Digits:
    return load_digits()


def test_split_is_deterministic(digits):
    again = load_digits()
    for first, second in zip(jax.tree.leaves(digits), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(first, second)


def test_split_sizes_and_dtypes_are_as_documented(digits):
    assert digits.train.images.shape == (1437, 64)
    assert digits.test.images.shape == (360, 64)
    assert digits.train.labels.shape == (1437,)
    assert digits.test.labels.shape == (360,)
    assert digits.train.images.dtype == np.float32
    assert digits.train.labels.dtype == np.int32
    for split in digits:
        assert split.images.min() == 0.0 and split.images.max() == 1.0
    assert data.NUM_CLASSES == 10 and data.IMAGE_SHAPE == (8, 8)


def test_split_is_stratified(digits):
    assert np.bincount(digits.test.labels, minlength=10).tolist() == [36] * 10
    total = np.bincount(digits.train.labels, minlength=10) + 36
    assert total.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_split_has_no_overlap_and_covers_the_data_set(digits):
    from sklearn.datasets import load_digits as sklearn_load_digits

    # The 1797 images are all different, so an image identifies its example.
    raw = sklearn_load_digits()
    everything = {
        (row / 16.0).astype(np.float32).tobytes(): label
        for row, label in zip(raw.data, raw.target, strict=True)
    }
    assert len(everything) == 1797
    train = {row.tobytes(): label for row, label in zip(*digits.train, strict=True)}
    test = {row.tobytes(): label for row, label in zip(*digits.test, strict=True)}
    assert len(train) == 1437 and len(test) == 360
    assert not set(train) & set(test)
    assert {**train, **test} == everything  # same images, same labels


def test_split_other_seed_and_size(digits):
    other = load_digits(seed=1)
    assert not np.array_equal(other.test.labels, digits.test.labels) or not np.array_equal(
        other.test.images, digits.test.images
    )
    small = load_digits(test_per_class=10)
    assert len(small.test.labels) == 100 and len(small.train.labels) == 1697


@pytest.mark.parametrize("test_per_class", [0, -1, 174, 1000])
def test_split_rejects_a_test_size_that_empties_a_split(test_per_class):
    with pytest.raises(ValueError, match="test_per_class must be between 1 and 173"):
        load_digits(test_per_class=test_per_class)


def _labels_of(batch_list):
    return [batch.labels.tolist() for batch in batch_list]


def test_batches_are_deterministic_for_a_key(digits):
    first = list(batches(digits.train, 100, jax.random.key(0)))
    second = list(batches(digits.train, 100, jax.random.key(0)))
    assert _labels_of(first) == _labels_of(second)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.images, b.images)


def test_batches_differ_for_another_key(digits):
    first = _labels_of(batches(digits.train, 100, jax.random.key(0)))
    other = _labels_of(batches(digits.train, 100, jax.random.key(1)))
    assert first != other


def test_batches_cover_each_example_once_per_epoch():
    # Distinct rows, so each example can be identified by its contents.
    split = Examples(np.arange(103 * 2, dtype=np.float32).reshape(103, 2), np.arange(103))
    all_batches = list(batches(split, 10, jax.random.key(3), drop_remainder=False))
    assert [len(b.labels) for b in all_batches] == [10] * 10 + [3]
    seen = np.concatenate([b.labels for b in all_batches])
    assert sorted(seen.tolist()) == list(range(103))
    assert seen.tolist() != list(range(103))  # shuffled
    for b in all_batches:  # images stay with their labels
        np.testing.assert_array_equal(b.images[:, 0], 2 * b.labels)


def test_batches_drop_the_remainder_by_default():
    split = Examples(np.zeros((103, 2), np.float32), np.arange(103))
    all_batches = list(batches(split, 10, jax.random.key(3)))
    assert [len(b.labels) for b in all_batches] == [10] * 10
    seen = np.concatenate([b.labels for b in all_batches])
    assert len(set(seen.tolist())) == 100  # each at most once
    assert steps_per_epoch(split, 10) == 10
    assert steps_per_epoch(split, 10, drop_remainder=False) == 11


def test_batch_of_the_whole_split(digits):
    (only,) = batches(digits.test, 360, jax.random.key(0))
    assert sorted(only.labels.tolist()) == sorted(digits.test.labels.tolist())


@pytest.mark.parametrize("batch_size", [0, -5])
def test_batches_reject_a_non_positive_batch_size(digits, batch_size):
    with pytest.raises(ValueError, match=f"batch_size must be at least 1, got {batch_size}"):
        batches(digits.train, batch_size, jax.random.key(0))
    with pytest.raises(ValueError, match="at least 1"):
        steps_per_epoch(digits.train, batch_size)


def test_batches_reject_a_batch_larger_than_the_split(digits):
    with pytest.raises(ValueError, match="larger than the split, which has 360 examples"):
        batches(digits.test, 361, jax.random.key(0))
    with pytest.raises(ValueError, match="at most 360"):
        steps_per_epoch(digits.test, 1000)


def test_batches_reject_a_non_integer_batch_size(digits):
    with pytest.raises(TypeError, match="batch_size must be an int"):
        batches(digits.train, 6.5, jax.random.key(0))


def test_batches_reject_an_empty_split():
    empty = Examples(np.zeros((0, 64), np.float32), np.zeros((0,), np.int32))
    with pytest.raises(ValueError, match="The split has no examples"):
        batches(empty, 8, jax.random.key(0))


def test_errors_raise_at_the_call_not_at_the_first_batch(digits):
    # batches validates eagerly, so a mistake shows where it was made.
    with pytest.raises(ValueError):
        batches(digits.train, 0, jax.random.key(0))
