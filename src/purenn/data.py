"""A small real data set that ships with scikit-learn, split and batched deterministically.

The data are scikit-learn's handwritten digits (:func:`sklearn.datasets.load_digits`): 1797
grayscale images of 8×8 pixels, labelled 0 to 9, stored inside the scikit-learn package, so
nothing is downloaded. Each image is flattened to 64 pixel values, scaled from the original
0-16 range to ``[0, 1]``.

The split is fixed: :func:`load_digits` holds out ``test_per_class`` images of every digit (36
by default, so 360 test images, equally many of each digit) chosen by a seeded NumPy generator,
and the remaining 1437 images form the training split. The same arguments always give the same
arrays, on any machine.

:func:`batches` shuffles a split with a JAX PRNG key and cuts it into batches: the same key
gives the same batches, and a different key (e.g. ``jax.random.fold_in(key, epoch)``) a
different order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import jax
import numpy as np

__all__ = [
    "load_digits",
    "Digits",
    "Examples",
    "batches",
    "steps_per_epoch",
    "NUM_CLASSES",
    "IMAGE_SHAPE",
]

NUM_CLASSES = 10
"""The number of classes: the digits 0 to 9."""

IMAGE_SHAPE = (8, 8)
"""The shape of one image; ``images.reshape(-1, *IMAGE_SHAPE)`` recovers the pictures."""


class Examples(NamedTuple):
    """Some labelled examples: a whole split, or one batch of it.

    A NamedTuple is a pytree, so a batch can be passed as one argument to a jitted function.

    Attributes:
        images: ``(n, 64)`` float32 pixel values in ``[0, 1]``, each row one flattened 8×8
            image.
        labels: ``(n,)`` int32 digits, 0 to 9.

    Example:
        >>> import numpy as np
        >>> from purenn.data import Examples
        >>> pair = Examples(images=np.zeros((2, 64), np.float32), labels=np.array([3, 7]))
        >>> len(pair.labels), pair.images.shape
        (2, (2, 64))
    """

    images: np.ndarray
    labels: np.ndarray


class Digits(NamedTuple):
    """The fixed train/test split returned by :func:`load_digits`.

    Attributes:
        train: the training examples (1437 with the default arguments).
        test: the held-out examples (360 with the default arguments, 36 of each digit).

    Example:
        >>> from purenn.data import load_digits
        >>> digits = load_digits()
        >>> len(digits.train.labels), len(digits.test.labels)
        (1437, 360)
    """

    train: Examples
    test: Examples


def load_digits(test_per_class: int = 36, seed: int = 0) -> Digits:
    """Load scikit-learn's handwritten digits as a fixed, stratified train/test split.

    For each digit, ``test_per_class`` of its images are drawn into the test split by a
    ``numpy.random.default_rng(seed)`` permutation; all other images are training images. Both
    splits keep the original order of the data set (sorted by their index in it), so the
    split depends on nothing but the two arguments.

    Args:
        test_per_class: how many images of each digit to hold out. The rarest digit has 174
            images, so this must be between 1 and 173.
        seed: the seed of the generator that picks the test images.

    Returns:
        A :class:`Digits` with ``train`` and ``test`` :class:`Examples`: images as ``(n, 64)``
        float32 in ``[0, 1]``, labels as ``(n,)`` int32.

    Raises:
        ValueError: if ``test_per_class`` would leave a split empty.

    Example:
        >>> import numpy as np
        >>> from purenn.data import load_digits
        >>> digits = load_digits()
        >>> digits.train.images.shape, digits.test.images.shape
        ((1437, 64), (360, 64))
        >>> np.bincount(digits.test.labels).tolist()
        [36, 36, 36, 36, 36, 36, 36, 36, 36, 36]
        >>> float(digits.train.images.min()), float(digits.train.images.max())
        (0.0, 1.0)
    """
    from sklearn.datasets import load_digits as sklearn_load_digits

    raw = sklearn_load_digits()
    labels = raw.target.astype(np.int32)
    smallest = int(np.bincount(labels).min())
    if not 1 <= test_per_class < smallest:
        raise ValueError(
            f"test_per_class must be between 1 and {smallest - 1} (the rarest digit has "
            f"{smallest} images, and both splits need some), got {test_per_class}; "
            "the default, 36, holds out 360 test images."
        )
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(labels), dtype=bool)
    for digit in range(NUM_CLASSES):
        of_digit = np.flatnonzero(labels == digit)
        is_test[rng.permutation(of_digit)[:test_per_class]] = True
    images = (raw.data / 16.0).astype(np.float32)
    return Digits(
        train=Examples(images[~is_test], labels[~is_test]),
        test=Examples(images[is_test], labels[is_test]),
    )


def _check_batch_size(examples: Examples, batch_size: int) -> int:
    count = len(examples.labels)
    if count == 0:
        raise ValueError(
            "The split has no examples, so there is nothing to batch; check how it was made "
            "(e.g. a slice or filter that selected nothing) and pass a split with at least one "
            "example."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise TypeError(
            f"batch_size must be an int, got {type(batch_size).__name__} {batch_size!r}; "
            "pass e.g. batch_size=64."
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}; pass e.g. 64.")
    if batch_size > count:
        raise ValueError(
            f"batch_size={batch_size} is larger than the split, which has {count} examples; "
            f"pass a batch_size of at most {count}."
        )
    return count


def steps_per_epoch(examples: Examples, batch_size: int, drop_remainder: bool = True) -> int:
    """Count the batches :func:`batches` makes from one pass over ``examples``.

    Useful to size a learning-rate schedule: ``epochs * steps_per_epoch(...)`` steps in all.

    Args:
        examples: the split to batch.
        batch_size: the number of examples per batch.
        drop_remainder: whether the last, incomplete batch is left out (as in
            :func:`batches`).

    Returns:
        The number of batches per epoch.

    Raises:
        ValueError: for an empty split, or a ``batch_size`` below 1 or above the split size.

    Example:
        >>> from purenn.data import load_digits, steps_per_epoch
        >>> train = load_digits().train
        >>> steps_per_epoch(train, 128), steps_per_epoch(train, 128, drop_remainder=False)
        (11, 12)
    """
    count = _check_batch_size(examples, batch_size)
    return count // batch_size if drop_remainder else math.ceil(count / batch_size)


def batches(
    examples: Examples, batch_size: int, key: jax.Array, drop_remainder: bool = True
) -> Iterator[Examples]:
    """Shuffle ``examples`` with ``key`` and yield them in batches of ``batch_size``.

    Each example appears at most once per pass. The order depends only on ``key``: use a new
    key per epoch, e.g. ``jax.random.fold_in(key, epoch)``, to see the data in a new order.

    Args:
        examples: the split to batch.
        batch_size: the number of examples per batch.
        key: a PRNG key, e.g. ``jax.random.key(0)``.
        drop_remainder: if True (the default), leave out the last batch when it would be
            smaller than ``batch_size``, so that every batch has the same shape and a jitted
            step compiles once; which examples are left out changes with the key. If False,
            yield it too, so every example is seen exactly once.

    Returns:
        An iterator over :class:`Examples` of ``batch_size`` examples each (fewer in a last,
        incomplete batch when ``drop_remainder`` is False), as NumPy arrays.

    Raises:
        ValueError: for an empty split, or a ``batch_size`` below 1 or above the split size.
        TypeError: if ``batch_size`` is not an int.

    Example:
        >>> import jax
        >>> from purenn.data import batches, load_digits
        >>> train = load_digits().train
        >>> first = [b.labels[:5].tolist() for b in batches(train, 128, jax.random.key(0))]
        >>> again = [b.labels[:5].tolist() for b in batches(train, 128, jax.random.key(0))]
        >>> len(first), first == again
        (11, True)
        >>> [len(b.labels) for b in batches(train, 500, jax.random.key(1), False)]
        [500, 500, 437]
    """
    # Checked here, not inside the generator, so that a mistake raises at the call.
    count = _check_batch_size(examples, batch_size)
    order = np.asarray(jax.random.permutation(key, count))
    stop = count - count % batch_size if drop_remainder else count
    return (
        Examples(images=examples.images[index], labels=examples.labels[index])
        for index in (order[start : start + batch_size] for start in range(0, stop, batch_size))
    )
