r"""Clustering objectives: k-means by gradient descent, soft k-means, class centroids.

Two families of users meet here.

*k-means by gradient descent.* :func:`kmeans_loss` is the k-means objective (the inertia)
``Σ_i min_k ‖x_i - c_k‖²`` as a differentiable function of the centroids, so it trains with
``jax.grad`` and any optax optimiser, on minibatches, inside a larger model.
:func:`soft_kmeans_loss` is its log-sum-exp relaxation, whose temperature can be annealed;
:func:`lloyd_step` is the classical EM update, for comparison and for polishing.

*Centroids of labelled features, per item of a ragged batch.* :func:`class_centroids`,
:func:`center_loss` and :func:`centroid_hinge_loss` compute per-class means and losses around
them with segment sums over a static ``num_classes`` bound, so a batch whose items each have a
different set (and number) of classes is one ``jax.vmap``: the padding is the bound plus the
per-class counts, and absent classes contribute nothing. The segment sums are one-hot matrix
products (``one_hot(y)ᵀ @ f``) and a point's own centroid is ``one_hot(y) @ c``: no gather or
scatter, so a batch sharded over devices needs only the all-reduce of the ``[K, D]`` sums.

Distances are computed as ``‖x‖² - 2 x·c + ‖c‖²`` (one matmul, at ``Precision.HIGHEST``), so
no ``[N, K, D]`` array of differences is ever formed; distances between a point and *one*
centroid (its own cluster's, its own class's) are computed directly from the difference, which
is exact. 16-bit inputs are computed in float32; float64 stays float64.

The contract arguments (``weights``, ``where``, ``ignore_index``, ``class_weights``,
``reduction``) mean what they mean everywhere in jaxloss; see :func:`jaxloss.reduce`.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    class_sums,
    class_weight_vector,
    compute_dtype,
    float_array,
    integer_labels,
    labels_ok,
    nan_if_out_of_range,
    one_hot_matmul,
    pick_label,
    static_float,
)
from jaxloss._reduction import (
    AxisName,
    Reduction,
    element_mask,
    reduce_elements,
    sanitize,
    weight_array,
)

__all__ = [
    "pairwise_sq_distances",
    "kmeans_assign",
    "kmeans_loss",
    "soft_kmeans_assign",
    "soft_kmeans_loss",
    "lloyd_step",
    "class_centroids",
    "center_loss",
    "center_loss_update",
    "centroid_hinge_loss",
]

_HIGHEST = jax.lax.Precision.HIGHEST


# ---------------------------------------------------------------------------------------------
# Distances and assignments.


def pairwise_sq_distances(x: ArrayLike, centroids: ArrayLike) -> Array:
    r"""Squared Euclidean distances from every point to every centroid, through one matmul.

    .. math:: d_{ik} = \max\bigl(\|x_i\|^2 - 2\, x_i \cdot c_k + \|c_k\|^2,\ 0\bigr)

    The expansion needs a single ``[N, D] × [D, K]`` matmul (run at ``Precision.HIGHEST``, so
    TF32/bf16 matmul units do not round it) and never forms the ``[N, K, D]`` array of
    differences that ``x[:, None] - c[None]`` would. Rounding can make the expansion slightly
    negative for a point on a centroid, hence the clamp at 0. Its gradient is the exact
    gradient of ``‖x - c‖²`` (``2(x - c)`` and ``2(c - x)``) wherever the clamp is inactive.

    Args:
      x: ``[..., D]`` points (any leading shape).
      centroids: ``[K, D]``.

    Returns:
      ``[..., K]`` squared distances, float32 for 16-bit inputs.

    >>> import jax.numpy as jnp
    >>> pairwise_sq_distances(jnp.array([[0.0, 0.0], [3.0, 4.0]]),
    ...                       jnp.array([[0.0, 0.0], [3.0, 0.0]]))
    Array([[ 0.,  9.],
           [25., 16.]], dtype=float32)
    """
    x, c = _points_and_centroids(x, centroids, "x")
    return _sq_distances(x, c)


def kmeans_assign(points: ArrayLike, centroids: ArrayLike) -> Array:
    r"""Index of the nearest centroid of every point: ``a_i = argmin_k ‖x_i - c_k‖²``.

    Ties go to the lowest index (as ``jnp.argmin`` and scikit-learn do).

    Args:
      points: ``[..., D]``.
      centroids: ``[K, D]``.

    Returns:
      ``[...]`` int32 indices in ``[0, K)``.

    >>> import jax.numpy as jnp
    >>> kmeans_assign(jnp.array([[0.1, 0.0], [2.9, 0.2]]), jnp.array([[0.0, 0.0], [3.0, 0.0]]))
    Array([0, 1], dtype=int32)
    """
    x, c = _points_and_centroids(points, centroids)
    return _assign(x, c)


def soft_kmeans_assign(points: ArrayLike, centroids: ArrayLike, *, temperature: Any) -> Array:
    r"""Soft assignments (responsibilities) at temperature ``T``: a softmax of ``-d / T``.

    .. math:: r_{ik} = \frac{\exp(-d_{ik}/T)}{\sum_j \exp(-d_{ij}/T)},
              \quad d_{ik} = \|x_i - c_k\|^2

    These are the weights with which :func:`soft_kmeans_loss` pulls each centroid (its gradient
    w.r.t. ``c_k`` is ``Σ_i 2 r_ik (c_k - x_i)``), the E-step of a Gaussian mixture with shared
    isotropic variance ``T/2``. As ``T → 0`` they become the one-hot :func:`kmeans_assign`.

    Args:
      points: ``[..., D]``.
      centroids: ``[K, D]``.
      temperature: ``T > 0``, a Python float or a traced scalar (annealing schedules).

    Returns:
      ``[..., K]`` rows that sum to 1.

    >>> import jax.numpy as jnp
    >>> soft_kmeans_assign(jnp.array([[1.0]]), jnp.array([[0.0], [2.0], [4.0]]),
    ...                    temperature=1.0)     # distances 1, 1, 9: 1 / (2 + e⁻⁸), e⁻⁸ / (2 + e⁻⁸)
    Array([[4.9991614e-01, 4.9991614e-01, 1.6770318e-04]], dtype=float32)
    """
    x, c = _points_and_centroids(points, centroids)
    _check_temperature(temperature)
    d, _ = _soft_distances(x, c)
    return jax.nn.softmax(-d / temperature, axis=-1)


# ---------------------------------------------------------------------------------------------
# k-means objectives.


def kmeans_loss(
    points: ArrayLike,
    centroids: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "sum",
    axis_name: AxisName | None = None,
) -> Array:
    r"""The k-means objective: squared distance of each point to its nearest centroid.

    .. math:: L(c) = \sum_i w_i \min_k \|x_i - c_k\|^2 = \sum_i w_i \|x_i - c_{a_i}\|^2,
              \qquad a_i = \arg\min_k \|x_i - c_k\|^2

    With the default ``reduction="sum"`` this is scikit-learn's ``inertia_`` (with
    ``sample_weight`` = ``weights``); ``"mean"`` is the per-point average, the right scale for
    minibatch SGD.

    **Why gradient descent works although argmin has no gradient.** The assignments ``a_i``
    are piecewise constant in the centroids: away from the measure-zero set where a point is
    equidistant from two centroids, small moves of the centroids do not change them. There
    ``L`` is an ordinary quadratic in the centroids, and its gradient is the gradient with the
    assignments held fixed:

    .. math:: \frac{\partial L}{\partial c_k} = 2 \sum_{i:\,a_i = k} w_i (c_k - x_i)
              = 2 n_k (c_k - m_k),

    with ``n_k = Σ_{a_i=k} w_i`` and ``m_k`` the (weighted) mean of cluster ``k``. That is
    what ``jax.grad`` returns: the argmin is integer-valued and carries no gradient, and the
    distance to the chosen centroid is differentiated as usual. ``L`` is continuous (a minimum
    of quadratics), so descending it decreases the inertia; at a tie (a point equidistant from
    two centroids) the gradient is that of the piece of the lowest-index tied centroid, one of
    the pieces that meet there (an element of the Clarke subdifferential).

    **A Newton step is exactly Lloyd's update.** For fixed assignments the Hessian is block
    diagonal, ``∂²L/∂c_k² = 2 n_k I``, so the Newton step is

    .. math:: c_k - (2 n_k)^{-1}\, 2 n_k (c_k - m_k) = m_k,

    the cluster mean: :func:`lloyd_step`. With autodiff: ``g = jax.grad(kmeans_loss,
    argnums=1)(x, c)``, ``h = jax.jvp(lambda c: jax.grad(kmeans_loss, argnums=1)(x, c), (c,),
    (jnp.ones_like(c),))[1]`` (the Hessian's diagonal, ``2 n_k``), then ``c - g / h`` where
    ``h > 0``. Plain gradient descent with step ``η`` on the mean loss is a damped Lloyd step,
    ``c_k ← c_k + 2η (n_k/N) (m_k - c_k)``.

    The per-point value is computed from the difference ``x_i - c_{a_i}`` (exact); only the
    argmin uses the matmul expansion of :func:`pairwise_sq_distances`. No ``[N, K, D]``
    intermediate is formed, in the value or in the gradient.

    Args:
      points: ``[..., D]``; every leading position is one element of the contract.
      centroids: ``[K, D]``.
      weights: sample weights broadcastable to ``points.shape[:-1]``.
      where: boolean mask broadcastable to ``points.shape[:-1]``; masked points contribute 0
        to the value and every gradient (even if they hold NaN).
      reduction: ``"sum"`` (default: the inertia) or any of :func:`jaxloss.reduce`'s.

    Returns:
      A scalar, or for ``reduction="none"`` the ``[...]`` weighted per-point losses.

    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0]])
    >>> c = jnp.array([[0.0, 0.5], [9.0, 0.0]])
    >>> kmeans_loss(x, c)                     # 0.25 + 2.25 + 1
    Array(3.5, dtype=float32)
    >>> jax.grad(kmeans_loss, argnums=1)(x, c)  # 2 Σ (c_k - x_i) over each cluster
    Array([[ 0., -2.],
           [-2.,  0.]], dtype=float32)
    """
    x, c = _points_and_centroids(points, centroids)
    loss_shape = x.shape[:-1]
    mask = element_mask(loss_shape, weights=weights, where=where)
    x = sanitize(x, mask)
    assignment = _assign(x, c)
    diff = x - one_hot_matmul(assignment, c)
    per = jnp.sum(diff * diff, axis=-1)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def soft_kmeans_loss(
    points: ArrayLike,
    centroids: ArrayLike,
    *,
    temperature: Any,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "sum",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Soft k-means: the log-sum-exp relaxation of :func:`kmeans_loss` at temperature ``T``.

    .. math:: L_T(c) = \sum_i w_i \Bigl(-T \log \sum_k \exp\bigl(-\|x_i - c_k\|^2 / T\bigr)\Bigr)

    The soft minimum satisfies ``min_k d_ik - T log K ≤ -T lse(-d_i/T) ≤ min_k d_ik``, so
    ``L_T → kmeans_loss`` as ``T → 0`` (from below, within ``T log K`` per point). It is smooth
    in the centroids, with gradient ``2 Σ_i w_i r_ik (c_k - x_i)`` where ``r`` are the
    :func:`soft_kmeans_assign` responsibilities: every point pulls every centroid, in
    proportion to how close it is. It is ``T`` times the negative log-likelihood (up to a
    constant) of a mixture of equal-weight Gaussians with variance ``T/2``, and the
    preconditioned step
    ``c_k - ∇_k / (2 Σ_i w_i r_ik)`` is that mixture's EM update.

    *Deterministic annealing* (Rose 1998) starts ``T`` above the data's critical temperature
    (``2 λ_max`` of the covariance, where all centroids sit at the mean), and lowers it
    geometrically while descending: clusters split one after the other as ``T`` crosses their
    critical values, which avoids most of the poor local minima that k-means reaches from one
    initialisation. ``temperature`` may be traced, so the schedule can live in a ``lax.scan``.

    Args:
      points: ``[..., D]``.
      centroids: ``[K, D]``.
      temperature: ``T > 0`` (a Python float is range-checked; a traced scalar is not).
      weights, where, reduction, axis_name: the contract, against ``points.shape[:-1]``; default
        ``"sum"``, as :func:`kmeans_loss`.

    >>> import jax.numpy as jnp
    >>> x, c = jnp.array([[1.0]]), jnp.array([[0.0], [2.0]])   # distances 1 and 1
    >>> soft_kmeans_loss(x, c, temperature=0.5)                # 1 - 0.5 log 2
    Array(0.6534264, dtype=float32)
    >>> soft_kmeans_loss(x, c, temperature=1e-3)               # → kmeans_loss = 1
    Array(0.9993068, dtype=float32)
    """
    x, c = _points_and_centroids(points, centroids)
    _check_temperature(temperature)
    mask = element_mask(x.shape[:-1], weights=weights, where=where)
    x = sanitize(x, mask)
    d, shift = _soft_distances(x, c)
    per = shift - temperature * jax.nn.logsumexp(-d / temperature, axis=-1)
    return reduce_elements(
        per.astype(d.dtype), mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def lloyd_step(
    points: ArrayLike,
    centroids: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""One Lloyd (EM) iteration: assign every point to its nearest centroid, move each
    centroid to the (weighted) mean of its points.

    .. math:: c_k' = \frac{\sum_{i:\,a_i = k} w_i x_i}{\sum_{i:\,a_i = k} w_i}
              \ \text{ if cluster } k \text{ is not empty, else } c_k' = c_k

    This is the Newton step on :func:`kmeans_loss` (see there). An empty cluster (no included
    point, or zero total weight) keeps its centroid; scikit-learn instead relocates it to a
    far point, which is a heuristic outside the objective. scikit-learn's ``KMeans`` with
    ``init=c, n_init=1, max_iter=1`` gives the same centroids when no cluster is empty.

    Args:
      points: ``[..., D]`` (all leading positions are pooled).
      centroids: ``[K, D]``.
      weights: non-negative sample weights broadcastable to ``points.shape[:-1]``.
      where: boolean mask broadcastable to ``points.shape[:-1]``; masked points are left out.

    Returns:
      The new ``[K, D]`` centroids, in the compute dtype.

    >>> import jax.numpy as jnp
    >>> x = jnp.array([[0.0], [1.0], [10.0], [12.0]])
    >>> lloyd_step(x, jnp.array([[2.0], [9.0], [100.0]]))    # third cluster is empty
    Array([[  0.5],
           [ 11. ],
           [100. ]], dtype=float32)
    """
    x, c = _points_and_centroids(points, centroids)
    k = c.shape[0]
    w, mask = _point_weights(x.shape[:-1], x.dtype, weights, where)
    x = sanitize(x, mask).reshape(math.prod(x.shape[:-1]), x.shape[-1])  # not -1: D may be 0
    assignment = _assign(x, c)
    sums = class_sums(assignment, x * w.reshape(-1, 1), k)
    totals = class_sums(assignment, w.reshape(-1), k)
    filled = totals > 0
    means = sums / jnp.where(filled, totals, 1)[:, None]
    return jnp.where(filled[:, None], means, c)


# ---------------------------------------------------------------------------------------------
# Class centroids and losses around them.


def class_centroids(
    features: ArrayLike,
    labels: ArrayLike,
    num_classes: int,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> tuple[Array, Array]:
    r"""The (weighted) mean feature of every class, by segment sums: ``(centroids, counts)``.

    .. math:: n_c = \sum_{i:\,y_i = c} w_i, \qquad
              \mu_c = \frac{1}{n_c} \sum_{i:\,y_i = c} w_i f_i \quad (\mu_c = 0 \text{ if } n_c = 0)

    ``num_classes`` is a static bound, not the number of classes present: an item may use any
    subset of ``range(num_classes)``, and a class with no (included) member gets a zero
    centroid and count 0, never NaN, with zero gradient. So a ragged batch (items with
    different numbers of classes and of points) is ``jax.vmap(class_centroids, (0, 0, None))``
    over features and labels padded to common shapes, the padding marked by ``where=False``
    or ``ignore_index``; ``counts > 0`` tells which classes each item has.

    Args:
      features: ``[..., D]`` (all leading positions are pooled: e.g. ``[H, W, D]`` pixel
        embeddings with ``[H, W]`` instance labels).
      labels: integer ``[...]``, the shape of ``features`` without its last axis.
      num_classes: Python int ≥ 1, the number of centroid slots.
      weights: non-negative point weights broadcastable to ``labels``.
      where: boolean mask broadcastable to ``labels``; ``False`` points are left out.
      ignore_index: a label value (e.g. -1) marking padding: such points are left out.

    Returns:
      ``centroids`` ``[num_classes, D]`` and ``counts`` ``[num_classes]`` (the summed weights
      of the members: their number when ``weights`` is None), in the compute dtype.

    Edges: an included point whose label is outside ``[0, num_classes)`` (and is not
    ``ignore_index``) belongs to no class; rather than drop it silently, every centroid is NaN
    (:func:`jaxloss.checked` raises instead).

    >>> import jax.numpy as jnp
    >>> f = jnp.array([[0.0, 0.0], [2.0, 2.0], [5.0, 1.0], [9.0, 9.0]])
    >>> centroids, counts = class_centroids(f, jnp.array([0, 0, 2, -1]), 4, ignore_index=-1)
    >>> centroids                  # classes 1 and 3 are absent
    Array([[1., 1.],
           [0., 0.],
           [5., 1.],
           [0., 0.]], dtype=float32)
    >>> counts
    Array([2., 0., 1., 0.], dtype=float32)
    """
    f, y, w, ok = _labelled_features(features, labels, num_classes, weights, where, ignore_index)
    centroids, counts = _centroids(f, y, w, num_classes)
    return jnp.where(ok, centroids, jnp.nan), counts


def center_loss(
    features: ArrayLike,
    labels: ArrayLike,
    centroids: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Center loss (Wen et al. 2016): half the squared distance of a feature to its class center.

    .. math:: \ell_i = \tfrac12\, w_{y_i} \|f_i - c_{y_i}\|^2

    Used next to a softmax cross-entropy to make features of one class compact. The
    ``centroids`` are an input: learn them by gradient descent (the gradient w.r.t. ``c_j``
    is ``Σ_{y_i=j} (c_j - f_i)``), update them with Wen et al.'s rule
    (:func:`center_loss_update`), or pass :func:`class_centroids` of the batch. Wen et al. sum
    over the minibatch (``reduction="sum"``); the default here is the contract's per-element
    ``"none"``.

    Args:
      features: ``[..., D]``.
      labels: integer ``[...]``.
      centroids: ``[C, D]``.
      weights, where, reduction, axis_name: the contract, against ``labels.shape``.
      class_weights: ``[C]``, the element's weight is ``class_weights[label]``.
      ignore_index: a label value whose elements act as ``where=False``.

    Edges: an out-of-range label (not ``ignore_index``) gives NaN for its element.

    >>> import jax.numpy as jnp
    >>> f = jnp.array([[1.0, 1.0], [3.0, 0.0], [7.0, 7.0]])
    >>> c = jnp.array([[0.0, 0.0], [3.0, 2.0]])
    >>> center_loss(f, jnp.array([0, 1, -1]), c, ignore_index=-1)
    Array([1., 2., 0.], dtype=float32)
    """
    f, c = _points_and_centroids(features, centroids, "features")
    num_classes = c.shape[0]
    loss_shape = f.shape[:-1]
    safe, in_range, include = _class_labels(labels, loss_shape, num_classes, ignore_index)
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    f = sanitize(f, mask)
    diff = f - one_hot_matmul(safe, c)
    per = 0.5 * jnp.sum(diff * diff, axis=-1)
    element_weight = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, num_classes, per.dtype)
        element_weight = pick_label(cw, safe)
        per = element_weight * per
    per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
    )


def center_loss_update(
    centroids: ArrayLike,
    features: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: Any = 0.5,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""Wen et al.'s (2016) centroid update for :func:`center_loss`, one minibatch.

    .. math:: c_j \leftarrow c_j - \alpha\, \frac{\sum_{i:\,y_i = j} (c_j - f_i)}
              {1 + \#\{i : y_i = j\}}

    The ``1 +`` keeps classes absent from the batch where they are; ``alpha`` in [0, 1] is the
    centroid learning rate. The result carries no gradient to the features (as in the paper,
    where the centers are not trained through the loss); it is an update rule, not a loss.

    Args:
      centroids: ``[C, D]``.
      features: ``[..., D]``.
      labels: integer ``[...]``; points with label ``ignore_index``, outside ``[0, C)``, or
        ``where=False`` are left out.
      alpha: step size.
      where: boolean mask broadcastable to ``labels``.
      ignore_index: label value to leave out.

    >>> import jax.numpy as jnp
    >>> c = jnp.array([[0.0], [10.0]])
    >>> center_loss_update(c, jnp.array([[2.0], [4.0]]), jnp.array([0, 0]), alpha=0.5)
    Array([[ 1.],
           [10.]], dtype=float32)
    """
    f, c = _points_and_centroids(features, centroids, "features")
    num_classes = c.shape[0]
    static_float(alpha, "alpha", low=0.0, high=1.0)
    safe, in_range, include = _class_labels(labels, f.shape[:-1], num_classes, ignore_index)
    mask = element_mask(f.shape[:-1], where=where, include=include)
    mask = in_range if mask is None else mask & in_range
    f = jax.lax.stop_gradient(sanitize(f, mask))
    w = mask.astype(f.dtype)
    sums = class_sums(
        safe.reshape(-1),
        (f * w[..., None]).reshape(math.prod(f.shape[:-1]), f.shape[-1]),
        num_classes,
    )
    counts = class_sums(safe.reshape(-1), w.reshape(-1), num_classes)
    delta = (counts[:, None] * c - sums) / (1.0 + counts[:, None])
    return c - alpha * delta


def centroid_hinge_loss(
    features: ArrayLike,
    labels: ArrayLike,
    num_classes: int,
    *,
    delta: Any,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    axis_name: AxisName | None = None,
    stop_centroid_gradient: bool = False,
) -> Array:
    r"""Hinge around each class centroid: the "pull" (variance) term of the discriminative loss.

    .. math::
        \mu_c = \text{mean}_{i:\,y_i = c} f_i, \qquad
        L_c = \frac{1}{n_c} \sum_{i:\,y_i = c} w_i \max\bigl(\|f_i - \mu_c\| - \delta,\ 0\bigr)^2,
        \qquad L = \frac{1}{\#\text{present}} \sum_{c \text{ present}} L_c

    (De Brabandere et al. 2017's variance term, with ``δ = δ_v``). Members within ``delta``
    of their class centroid cost nothing; farther ones are pulled in quadratically. Computed
    for all classes at once with segment sums over the static ``num_classes`` bound: the
    centroids by :func:`class_centroids`, each member's distance to its own centroid
    directly (``[N, D]``, no ``[C, N, D]``), and the per-class means by a second segment sum.
    Absent classes are left out of the average, so a ragged batch (items with different
    class sets, padded) is ``jax.vmap(lambda f, y: centroid_hinge_loss(f, y, C, delta=δ,
    ignore_index=-1))``.

    The contract works on the *per-class* losses ``L_c`` (the elements here are classes):
    ``reduction="mean"`` (default) is the formula above, ``"none"`` returns the ``[C]`` vector
    ``w_c L_c`` (0 for absent classes), ``class_weights`` ``[C]`` weigh the classes (and
    ``"weighted_mean"`` divides by their sum over present classes). ``weights`` and ``where``
    are per point and enter the centroids and ``L_c``: ``μ_c`` and ``n_c`` are the weighted
    mean and total weight.

    The gradient flows through the centroids (they are functions of the features), as in the
    discriminative loss; ``stop_centroid_gradient=True`` treats them as constants. The norm is
    made safe at 0, so a member on its centroid gets a zero (not NaN) gradient even with
    ``delta=0``.

    Args:
      features: ``[..., D]`` (leading positions pooled, e.g. ``[H, W, D]`` pixel embeddings).
      labels: integer ``[...]``.
      num_classes: Python int ≥ 1, the bound on class ids.
      delta: margin ``δ ≥ 0``.
      weights: point weights broadcastable to ``labels``.
      where: point mask broadcastable to ``labels``.
      class_weights: ``[num_classes]`` class weights of the average.
      ignore_index: a label value marking padding points.
      reduction: over classes; see above and :func:`jaxloss.reduce`.
      stop_centroid_gradient: hold the centroids constant under differentiation.

    Edges: no present class gives 0 with zero gradient. An included point with a label
    outside ``[0, num_classes)`` (and not ``ignore_index``) makes the result NaN.

    >>> import jax.numpy as jnp
    >>> f = jnp.array([[0.0], [4.0], [10.0], [10.5], [99.0]])
    >>> y = jnp.array([0, 0, 1, 1, -1])
    >>> # class 0: centroid 2, both members 2 away: (2 - 1)² = 1; class 1: within delta
    >>> centroid_hinge_loss(f, y, 3, delta=1.0, ignore_index=-1, reduction="none")
    Array([1., 0., 0.], dtype=float32)
    >>> centroid_hinge_loss(f, y, 3, delta=1.0, ignore_index=-1)   # mean over 2 present classes
    Array(0.5, dtype=float32)
    """
    static_float(delta, "delta", low=0.0)
    f, y, w, ok = _labelled_features(features, labels, num_classes, weights, where, ignore_index)
    centroids, counts = _centroids(f, y, w, num_classes)
    if stop_centroid_gradient:
        centroids = jax.lax.stop_gradient(centroids)
    diff = f - one_hot_matmul(y, centroids)
    sq = jnp.sum(diff * diff, axis=-1)
    positive = sq > 0
    dist = jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1)), 0)
    hinge = jnp.maximum(dist - delta, 0) ** 2
    per_class = class_sums(y, w * hinge, num_classes)
    present = counts > 0
    per_class = per_class / jnp.where(present, counts, 1)
    per_class = jnp.where(ok, per_class, jnp.nan)
    if class_weights is not None:
        class_weights = class_weight_vector(class_weights, num_classes, per_class.dtype)
    class_mask = element_mask((num_classes,), weights=class_weights, include=present)
    return reduce_elements(
        per_class, mask=class_mask, weights=class_weights, reduction=reduction, axis_name=axis_name
    )


# ---------------------------------------------------------------------------------------------
# Private helpers.


def _points_and_centroids(
    x: ArrayLike, centroids: ArrayLike, x_name: str = "points"
) -> tuple[Array, Array]:
    """Validate ``[..., D]`` points and ``[K, D]`` centroids; cast both to the compute dtype."""
    x = float_array(x, x_name)
    c = float_array(centroids, "centroids")
    if c.ndim != 2 or c.shape[0] < 1:
        raise ValueError(f"centroids has shape {tuple(c.shape)}; expected [K, D] with K ≥ 1.")
    if x.ndim < 1 or x.shape[-1] != c.shape[1]:
        raise ValueError(
            f"{x_name} has shape {tuple(x.shape)} but centroids has shape {tuple(c.shape)}; "
            f"expected {x_name} of shape [..., {c.shape[1]}] (the same feature dimension D)."
        )
    dtype = jnp.promote_types(compute_dtype(x.dtype), compute_dtype(c.dtype))
    return x.astype(dtype), c.astype(dtype)


def _sq_distances(x: Array, c: Array) -> Array:
    """``max(‖x‖² - 2x·c + ‖c‖², 0)``: ``[..., D] × [K, D] → [..., K]`` through one matmul."""
    cross = jnp.matmul(x, c.T, precision=_HIGHEST)
    d = jnp.sum(x * x, axis=-1, keepdims=True) - 2.0 * cross + jnp.sum(c * c, axis=-1)
    return jnp.maximum(d, 0)


def _soft_distances(x: Array, c: Array) -> tuple[Array, Array]:
    """The squared distances the soft assignments use, less a per-point shift they ignore.

    ``‖x‖² - 2x·c + ‖c‖²`` (clipped at 0) as :func:`_sq_distances`, except for points so large
    that ``‖x‖²`` overflows: there ``‖c‖² - 2x·c`` (finite), with the shift ``‖x‖²`` returned
    apart, so neither the softmax over ``k`` nor a gradient sees inf - inf.
    """
    xx = jnp.sum(x * x, axis=-1, keepdims=True)
    huge = ~jnp.isfinite(xx)
    m2 = -2.0 * jnp.matmul(x, c.T, precision=_HIGHEST)
    cc = jnp.sum(c * c, axis=-1)
    d = jnp.where(huge, m2 + cc, jnp.maximum(jnp.where(huge, 0, xx) + m2 + cc, 0))
    return d, jnp.where(huge, xx, 0)[..., 0]


def _assign(x: Array, c: Array) -> Array:
    return jnp.argmin(jax.lax.stop_gradient(_sq_distances(x, c)), axis=-1).astype(jnp.int32)


def _check_temperature(temperature: Any) -> None:
    static_float(temperature, "temperature", low=0.0, low_open=True)


def _point_weights(
    shape: tuple[int, ...],
    dtype: Any,
    weights: ArrayLike | None,
    where: ArrayLike | None,
    include: Array | None = None,
) -> tuple[Array, Array | None]:
    """Per-point weights broadcast to ``shape`` (0 for excluded points) and the included mask."""
    mask = element_mask(shape, weights=weights, where=where, include=include)
    w = jnp.ones(shape, dtype)
    if weights is not None:
        w = jnp.broadcast_to(weight_array(weights, shape).astype(dtype), shape)
    if mask is not None:
        w = jnp.where(mask, w, 0)
    return w, mask


def _class_labels(
    labels: ArrayLike, shape: tuple[int, ...], num_classes: int, ignore_index: int | None
) -> tuple[Array, Array, Array | None]:
    """Validate integer labels of shape ``shape``; returns ``(safe, in_range, include)``."""
    return integer_labels(
        labels, shape, num_classes, ignore_index, of="features without its last (feature) axis"
    )


def _labelled_features(
    features: ArrayLike,
    labels: ArrayLike,
    num_classes: int,
    weights: ArrayLike | None,
    where: ArrayLike | None,
    ignore_index: int | None,
) -> tuple[Array, Array, Array, Array]:
    """Flattened ``[M, D]`` features, safe ``[M]`` labels, ``[M]`` weights (0 = left out),
    and a scalar that is False when an included label is out of range."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a Python int ≥ 1; got {num_classes!r}.")
    f = float_array(features, "features")
    if f.ndim < 1:
        raise ValueError(f"features has shape {tuple(f.shape)}; expected [..., D].")
    f = f.astype(compute_dtype(f.dtype))
    shape = f.shape[:-1]
    safe, in_range, include = _class_labels(labels, shape, num_classes, ignore_index)
    w, mask = _point_weights(shape, f.dtype, weights, where, include)
    ok = jnp.all(labels_ok(in_range, mask, num_classes, ignore_index))
    w = jnp.where(in_range, w, 0)
    f = sanitize(f, in_range if mask is None else mask & in_range)
    # Sizes spelled out (not -1): D = 0 features must reshape too.
    return f.reshape(math.prod(shape), f.shape[-1]), safe.reshape(-1), w.reshape(-1), ok


def _centroids(f: Array, y: Array, w: Array, num_classes: int) -> tuple[Array, Array]:
    sums = class_sums(y, f * w[:, None], num_classes)
    counts = class_sums(y, w, num_classes)
    present = counts > 0
    centroids = jnp.where(present[:, None], sums / jnp.where(present, counts, 1)[:, None], 0)
    return centroids, counts
