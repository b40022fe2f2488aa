"""Class-weighting schemes: counts, weights (balanced, inverse, median frequency, effective
number), per-pixel weight maps, and weighted sampling (the alternative to weighting the loss).

The weight of an example is a property of its **true** class: build weight maps from the ground
truth (:func:`class_weight_map`, or pass ``class_weights=`` to a loss, which does the same),
never from the prediction — weighting by the predicted class would change with the model and
reward predicting rare classes rather than finding them.

Typical use, counting over a training set (accumulate counts across batches, e.g. in NumPy,
for datasets larger than one array)::

    counts = jl.class_counts(train_labels, num_classes, ignore_index=255)
    w = jl.class_weights(counts, method="balanced")
    loss = jl.softmax_cross_entropy_with_integer_labels(
        logits, labels, class_weights=w, ignore_index=255, reduction="weighted_mean")

Everything is jittable: ``method`` and ``normalize`` are static strings, the rest are arrays.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    compute_dtype,
    float_array,
    is_label,
    pick_label,
    static_float,
    upcast,
    value_check,
)
from jaxloss._reduction import element_mask

__all__ = [
    "class_counts",
    "class_image_counts",
    "class_weights",
    "class_weight_map",
    "weighted_sample",
]

Method = Literal["balanced", "inverse", "median_frequency", "effective_number"]
_METHODS = ("balanced", "inverse", "median_frequency", "effective_number")
_NORMALIZE = (None, "none", "mean", "sum")


def _check_num_classes(num_classes: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive Python int; got {num_classes!r}.")


def class_counts(
    labels: ArrayLike,
    num_classes: int,
    *,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""Number of elements (pixels, examples) of each class.

    .. math:: n_c = \sum_i [\text{where}_i]\,[y_i = c] \quad\text{or}\quad
              n_c = \sum_i [\text{where}_i]\, y_{ic} \ \text{(one-hot / probability labels)}

    Args:
      labels: integer labels of any shape, or one-hot / probability labels ``[..., C]``
        (floating point, class axis last).
      num_classes: ``C``, a Python int.
      where: boolean mask broadcastable to the labels (less the class axis): elements to count.
      ignore_index: integer label of elements not to count.

    Returns:
      ``[C]`` counts: integer (int32, or int64 under x64) for integer labels, the labels' float
      dtype for one-hot labels (soft labels give fractional counts).

    Edges: integer labels outside ``[0, C)`` that are not ``ignore_index`` are not counted
    (:func:`jaxloss.checked` raises on them).

    >>> import jax.numpy as jnp
    >>> class_counts(jnp.array([[0, 2, 2], [2, 255, 1]]), 3, ignore_index=255)
    Array([1, 1, 3], dtype=int32)
    """
    _check_num_classes(num_classes)
    labels = jnp.asarray(labels)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        include = None
        if ignore_index is not None:
            if not isinstance(ignore_index, int):
                raise TypeError(f"ignore_index must be a Python int or None; got {ignore_index!r}.")
            include = labels != ignore_index
        mask = element_mask(labels.shape, where=where, include=include, what="labels")
        in_range = (labels >= 0) & (labels < num_classes)
        value_check(
            in_range if mask is None else in_range | ~mask,
            f"labels must lie in [0, {num_classes}) or equal "
            f"ignore_index={ignore_index}; got an out-of-range label.",
        )
        # One-hot sums, not a scatter: an out-of-range label matches no class.
        hit = is_label(labels, num_classes)
        if mask is not None:
            hit = hit & mask[..., None]
        return jnp.sum(hit, axis=tuple(range(labels.ndim)), dtype=int)
    labels = upcast(float_array(labels, "labels"))
    if ignore_index is not None:
        raise ValueError("ignore_index needs integer labels; use where= with one-hot labels.")
    if labels.ndim < 1 or labels.shape[-1] != num_classes:
        raise ValueError(
            f"one-hot labels must have the class axis last with num_classes="
            f"{num_classes} entries; got shape {tuple(labels.shape)}."
        )
    mask = element_mask(labels.shape[:-1], where=where, what="labels without the class axis")
    if mask is not None:
        labels = jnp.where(mask[..., None], labels, 0)
    return jnp.sum(labels.reshape(-1, num_classes), axis=0)


def class_image_counts(
    labels: ArrayLike,
    num_classes: int,
    *,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""For each class, the number of (counted) pixels in the images that contain it.

    .. math:: N_c = \sum_b [n_{bc} > 0] \sum_k n_{bk}

    with ``n_{bc}`` the :func:`class_counts` of image ``b``. The denominator of the median
    frequency balancing of Eigen & Fergus (``class_weights(..., method="median_frequency",
    image_counts=N)``): the frequency of class ``c`` is ``n_c / N_c``. Unlabeled pixels
    (``ignore_index``, ``where=False``) are not counted, neither as pixels of a class nor in
    an image's total.

    Args:
      labels: integer labels ``[B, ...]`` or one-hot labels ``[B, ..., C]`` (leading axis: the
        images).
      num_classes, where, ignore_index: as :func:`class_counts`.

    Returns:
      ``[C]``, of :func:`class_counts`'s dtype.

    >>> import jax.numpy as jnp
    >>> labels = jnp.array([[0, 0, 0, 1], [0, 0, 2, 2]])    # 2 images of 4 pixels
    >>> class_image_counts(labels, 3)
    Array([8, 4, 4], dtype=int32)
    """
    labels = jnp.asarray(labels)
    integer = jnp.issubdtype(labels.dtype, jnp.integer)
    if labels.ndim < (1 if integer else 2):
        raise ValueError(f"labels need a leading image axis; got shape {tuple(labels.shape)}.")
    loss_ndim = labels.ndim if integer else labels.ndim - 1
    if where is not None:
        where = jnp.broadcast_to(jnp.asarray(where), labels.shape[:loss_ndim])

    def one_image(lab: Array, wh: Array | None) -> Array:
        return class_counts(lab, num_classes, where=wh, ignore_index=ignore_index)

    per_image = (
        jax.vmap(one_image)(labels, where)
        if where is not None
        else jax.vmap(lambda lab: one_image(lab, None))(labels)
    )
    totals = jnp.sum(per_image, axis=1, keepdims=True)
    return jnp.sum(jnp.where(per_image > 0, totals, 0), axis=0)


def class_weights(
    counts: ArrayLike,
    *,
    method: Method = "balanced",
    beta: float | ArrayLike = 0.999,
    normalize: Literal["none", "mean", "sum"] | None = None,
    image_counts: ArrayLike | None = None,
) -> Array:
    r"""Class weights from class counts, by one of four schemes.

    .. math::
        \text{balanced: } w_c = \frac{\sum_k n_k}{K\, n_c} \qquad
        \text{inverse: } w_c = \frac{1}{n_c}

        \text{median\_frequency: } w_c = \frac{\operatorname{median}_k f_k}{f_c},\
        f_c = \frac{n_c}{N_c} \qquad
        \text{effective\_number: } w_c = \frac{1 - \beta}{1 - \beta^{n_c}}

    * ``"balanced"`` is scikit-learn's ``compute_class_weight("balanced")``, ``K`` the number of
      classes present.
    * ``"median_frequency"`` is Eigen & Fergus (2015): ``N_c`` is the number of pixels of the
      images where class ``c`` is present (:func:`class_image_counts`), passed as
      ``image_counts``; the median is over the present classes (mean of the two middle values
      for an even number).
    * ``"effective_number"`` is Cui et al. (2019), "Class-balanced loss based on effective
      number of samples": ``β → 1`` approaches inverse frequency, ``β = 0`` gives equal weights.

    **Classes absent everywhere (``n_c = 0``) get weight 0, not inf** (they have no examples to
    weight; a 0 keeps ``"weighted_mean"`` finite).

    Args:
      counts: ``[C]`` non-negative class counts (:func:`class_counts`).
      method: one of the four above.
      beta: ``β`` in [0, 1) for ``"effective_number"``.
      normalize: ``"none"`` (the raw formula), ``"mean"`` (rescaled so the weights sum to
        ``C``, i.e. average 1 over all classes), ``"sum"`` (rescaled to sum to 1), or ``None``
        for the method's own convention: ``"mean"`` for ``"effective_number"`` (as Cui et
        al.), ``"none"`` for the others (``"balanced"`` then equals scikit-learn's).
      image_counts: ``[C]`` ``N_c``, required by ``"median_frequency"`` only.

    Returns:
      ``[C]`` float weights (float32, or the counts' float dtype if wider).

    >>> import jax.numpy as jnp
    >>> class_weights(jnp.array([6, 3, 0, 1]))                 # 10 / (3 · n_c); absent → 0
    Array([0.5555556, 1.1111112, 0.       , 3.3333333], dtype=float32)
    >>> class_weights(jnp.array([6, 3, 1]), method="median_frequency",
    ...               image_counts=jnp.array([10, 10, 4]))   # f = .6, .3, .25; median .3
    Array([0.5, 1. , 1.2], dtype=float32)
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, _METHODS))}; got {method!r}.")
    if normalize not in _NORMALIZE:
        raise ValueError(
            f"normalize must be one of None, 'none', 'mean', 'sum'; got {normalize!r}."
        )
    n = jnp.asarray(counts)
    if n.ndim != 1:
        raise ValueError(f"counts must be 1-D, [num_classes]; got shape {tuple(n.shape)}.")
    if not (jnp.issubdtype(n.dtype, jnp.number)):
        raise TypeError(f"counts must be numeric; got dtype {n.dtype}.")
    dtype = (
        compute_dtype(n.dtype) if jnp.issubdtype(n.dtype, jnp.floating) else jnp.dtype(jnp.float32)
    )
    n = n.astype(dtype)
    present = n > 0
    safe_n = jnp.where(present, n, 1.0)

    if method == "balanced":
        k = jnp.sum(present).astype(dtype)
        # (k = 0 only when no class is present: every weight is 0 then, and so is the gradient.)
        raw = jnp.sum(n) / (jnp.maximum(k, 1) * safe_n)
    elif method == "inverse":
        raw = 1.0 / safe_n
    elif method == "median_frequency":
        if image_counts is None:
            raise ValueError(
                "method='median_frequency' needs image_counts=[C], the number of "
                "pixels of the images where each class is present "
                "(see class_image_counts)."
            )
        big_n = jnp.asarray(image_counts)
        if big_n.shape != n.shape:
            raise ValueError(
                f"image_counts has shape {tuple(big_n.shape)}; expected "
                f"{tuple(n.shape)}, like counts."
            )
        big_n = big_n.astype(dtype)
        present = present & (big_n > 0)
        freq = jnp.where(present, n / jnp.where(present, big_n, 1.0), jnp.nan)
        median = jnp.nanmedian(freq)
        raw = median / jnp.where(present, freq, 1.0)
    else:  # effective_number
        static_float(beta, "beta", low=0.0, high=1.0, high_open=True)
        b = jnp.asarray(beta, dtype)
        # 1 - β^n computed as -expm1(n log β): accurate for β near 1.
        effective = -jnp.expm1(safe_n * jnp.log(b)) / (1.0 - b)
        raw = 1.0 / effective
    weights = jnp.where(present, raw, 0.0)

    mode = normalize
    if mode is None:
        mode = "mean" if method == "effective_number" else "none"
    if mode == "mean":
        total = jnp.sum(weights)
        weights = jnp.where(total > 0, weights * (n.shape[0] / jnp.where(total > 0, total, 1)), 0)
    elif mode == "sum":
        total = jnp.sum(weights)
        weights = jnp.where(total > 0, weights / jnp.where(total > 0, total, 1), 0)
    return weights


def class_weight_map(
    labels: ArrayLike,
    class_weights: ArrayLike,
    *,
    ignore_index: int | None = None,
) -> Array:
    r"""Per-pixel (per-element) weights from the **ground-truth** labels.

    .. math:: W_i = w_{y_i} \quad\text{or}\quad W_i = \sum_c w_c\, y_{ic} \ \text{(one-hot)}

    Pass the result as ``weights=`` to any per-pixel loss; for a class-axis loss it is the same
    as ``class_weights=`` except for ``"weighted_mean"``'s denominator (a weight map counts as
    sample weights). Weights come from the truth, never the prediction.

    Args:
      labels: integer labels of any shape, or one-hot / probability labels ``[..., C]``.
      class_weights: ``[C]``.
      ignore_index: integer label whose elements get weight 0.

    Returns:
      The labels' shape (less the class axis for one-hot labels), float.

    Edges: an out-of-range integer label that is not ``ignore_index`` gets NaN
    (:func:`jaxloss.checked` raises instead).

    >>> import jax.numpy as jnp
    >>> class_weight_map(jnp.array([[0, 1], [255, 1]]), jnp.array([0.5, 4.0]), ignore_index=255)
    Array([[0.5, 4. ],
           [0. , 4. ]], dtype=float32)
    """
    w = jnp.asarray(class_weights)
    w = upcast(float_array(w.astype(jnp.result_type(w, float)), "class_weights"))
    if w.ndim != 1:
        raise ValueError(f"class_weights must be 1-D, [num_classes]; got shape {tuple(w.shape)}.")
    num_classes = w.shape[0]
    labels = jnp.asarray(labels)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if ignore_index is not None and not isinstance(ignore_index, int):
            raise TypeError(f"ignore_index must be a Python int or None; got {ignore_index!r}.")
        in_range = (labels >= 0) & (labels < num_classes)
        ignored = jnp.zeros(labels.shape, bool) if ignore_index is None else labels == ignore_index
        value_check(
            in_range | ignored,
            f"labels must lie in [0, {num_classes}) or equal "
            f"ignore_index={ignore_index}; got an out-of-range label.",
        )
        out = pick_label(w, jnp.where(in_range, labels, 0))
        out = jnp.where(in_range, out, jnp.nan)
        return jnp.where(ignored, 0.0, out)
    if ignore_index is not None:
        raise ValueError("ignore_index needs integer labels.")
    y = float_array(labels, "labels")
    if y.ndim < 1 or y.shape[-1] != num_classes:
        raise ValueError(
            f"one-hot labels must have the class axis last with {num_classes} "
            f"entries (class_weights' length); got shape {tuple(y.shape)}."
        )
    return jnp.sum(upcast(y) * w, axis=-1)


def weighted_sample(
    key: Array,
    weights: ArrayLike,
    num_samples: int,
    replace: bool = True,
) -> Array:
    r"""Indices drawn with probability proportional to ``weights``: PyTorch's
    ``WeightedRandomSampler``, as a pure function of a PRNG key.

    .. math:: P(\text{index} = i) = \frac{w_i}{\sum_j w_j}

    With ``replace=True`` the ``num_samples`` draws are independent (``jax.random.categorical``
    over ``log w``). With ``replace=False`` they are distinct, drawn one after another from
    what is left (the Gumbel-top-k form of that sequential draw: the ``num_samples`` largest
    ``log w_i + G_i``, ``G_i`` standard Gumbel), as ``torch.multinomial(w, n, False)``.

    **Sampling or weighting?** A batch drawn this way has, in expectation, the gradient of the
    ``weights``-weighted mean loss over the data (``reduction="weighted_mean"`` with
    ``weights=w``), so the two target the same objective. Weighting the loss is exact and adds
    no sampling noise, and every example is seen once per epoch; prefer it for moderate
    imbalance. Sampling shows rare examples more often — each batch then has some — which
    lowers the gradient variance of rare classes and helps batch statistics when a class is so
    rare that most batches would miss it; but it repeats rare examples (they can be
    memorised) and the expectation holds only across batches. Do not do both: weighting the
    loss of a weighted sample counts the weights twice.

    Args:
      key: a PRNG key (``jax.random.key`` or a legacy ``PRNGKey``).
      weights: ``[N]`` non-negative weights (need not sum to 1), e.g. ``class_weights[labels]``
        for a class-balanced sampler.
      num_samples: how many indices to draw (a Python int, static under ``jit``).
      replace: draw with replacement (default, as PyTorch's sampler) or without.

    Returns:
      ``[num_samples]`` int32 indices into ``weights``.

    Edges: a zero weight is never drawn with replacement; without replacement it is drawn only
    once every positive weight has been (in index order), so ``num_samples`` must not exceed
    ``N`` (checked at trace time). Negative, NaN or all-zero weights have no meaning; inside
    :func:`jaxloss.checked` they raise.

    >>> import jax, jax.numpy as jnp
    >>> idx = weighted_sample(jax.random.key(0), jnp.array([1.0, 0.0, 3.0]), 1000)
    >>> bool(jnp.all(idx != 1)), round(float(jnp.mean(idx == 2)), 2)   # never 1; about 3/4 are 2
    (True, 0.76)
    >>> sorted(weighted_sample(jax.random.key(0), jnp.ones(5), 5, replace=False).tolist())
    [0, 1, 2, 3, 4]
    """
    w = upcast(float_array(weights, "weights"))
    if w.ndim != 1:
        raise ValueError(f"weights must be 1-D, [N]; got shape {tuple(w.shape)}.")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
        raise ValueError(f"num_samples must be a non-negative Python int; got {num_samples!r}.")
    if not isinstance(replace, bool):
        raise TypeError(f"replace must be a Python bool; got {replace!r}.")
    if not replace and num_samples > w.shape[0]:
        raise ValueError(
            f"num_samples={num_samples} exceeds the {w.shape[0]} weights; without replacement "
            "each index is drawn at most once (pass replace=True to draw more)."
        )
    value_check(
        jnp.all(w >= 0) & jnp.any(w > 0),
        "weights must be non-negative and finite with a positive sum.",
    )
    log_w = jnp.where(w > 0, jnp.log(jnp.where(w > 0, w, 1)), -jnp.inf)
    if replace:
        return jax.random.categorical(key, log_w, shape=(num_samples,)).astype(jnp.int32)
    keys = log_w + jax.random.gumbel(key, w.shape, w.dtype)
    return jax.lax.top_k(keys, num_samples)[1].astype(jnp.int32)
