r"""``torch.nn.functional``'s loss functions with PyTorch's signatures, defaults and results.

For code ported from PyTorch: ``import jaxloss.compat.torch as F`` and the calls keep their
meaning. Each function is a thin call into the jaxloss function that owns the math (named in
its docstring), so the numerics (stable forms, finite gradients, NaN isolation) are
jaxloss's. What carries over from PyTorch:

* **argument names and positions** up to PyTorch's first deprecated argument
  (``size_average``/``reduce``, which are not accepted); later arguments are keyword-only;
* **defaults**: ``reduction="mean"``, ``ignore_index=-100``, ``margin`` values, ``eps``;
* **the class axis is 1** (``[N, C, d1, ...]`` inputs, or an unbatched ``[C]``);
* **reductions**: ``"none"``, ``"sum"`` and PyTorch's ``"mean"``: the weighted mean over
  non-ignored targets for ``cross_entropy``/``nll_loss`` with class indices (jaxloss's
  ``"weighted_mean"``), the plain mean over elements everywhere else (with an element
  ``weight``, ``Σ w·ℓ / numel`` as in PyTorch); ``kl_div`` also takes ``"batchmean"``.

Differences, each deliberate: an out-of-range class index that is not ``ignore_index`` gives
NaN for its element (PyTorch raises on CPU and asserts on CUDA; :func:`jaxloss.checked`
raises); there is no ``size_average``/``reduce``; ``ctc_loss`` takes padded ``[N, S]``
targets only (not the concatenated 1-D form, whose split needs concrete lengths).

>>> import jax.numpy as jnp
>>> import jaxloss.compat.torch as F
>>> logits = jnp.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
>>> F.cross_entropy(logits, jnp.array([0, -100]))   # the ignored row is left out of the mean
Array(0.24131..., dtype=float32)
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

import jaxloss as jl
from jaxloss._checks import Array, ArrayLike, float_array, integer_array
from jaxloss.embedding import _triplet_distances

__all__ = [
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "kl_div",
    "poisson_nll_loss",
    "gaussian_nll_loss",
    "margin_ranking_loss",
    "hinge_embedding_loss",
    "cosine_embedding_loss",
    "triplet_margin_loss",
    "soft_margin_loss",
    "multilabel_soft_margin_loss",
    "multilabel_margin_loss",
    "multi_margin_loss",
    "ctc_loss",
]

TorchReduction = Literal["none", "mean", "sum"]


def _check(reduction: str, allowed: tuple[str, ...] = ("none", "mean", "sum")) -> None:
    if reduction not in allowed:
        raise ValueError(
            f"reduction must be one of {', '.join(repr(r) for r in allowed)} (PyTorch's); "
            f"got {reduction!r}."
        )


def _elementwise(per: Array, reduction: str) -> Array:
    """PyTorch's reduction of an element-wise loss: ``"mean"`` is ``Σ / numel``."""
    _check(reduction)
    if reduction == "none":
        return per
    return jl.reduce(per, reduction="sum" if reduction == "sum" else "mean")


def _class_axis(x: ArrayLike) -> int:
    """PyTorch's class dimension: 1 for ``[N, C, ...]``, 0 for an unbatched ``[C]``."""
    return 1 if jnp.ndim(x) >= 2 else 0


def cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    ignore_index: int = -100,
    reduction: TorchReduction = "mean",
    label_smoothing: float = 0.0,
) -> Array:
    r"""``torch.nn.functional.cross_entropy``: softmax cross-entropy over the class axis 1.

    .. math:: \ell_n = -\sum_c w_c\, \tilde y_{n,c} \log \mathrm{softmax}(x_n)_c

    Class-index targets call :func:`jaxloss.softmax_cross_entropy_with_integer_labels`
    (``class_weights=weight``, ``ignore_index``, ``label_smoothing``; PyTorch's ``"mean"`` is
    ``"weighted_mean"``: divided by ``Σ w_y`` over non-ignored targets). Probability targets
    (float, the input's shape) call :func:`jaxloss.softmax_cross_entropy`, and ``"mean"``
    divides by the number of elements, as PyTorch does (an all-zero target row counts, with
    loss 0; with label smoothing PyTorch smooths it to ``ε/C``, jaxloss keeps it unlabeled).

    >>> import jax.numpy as jnp
    >>> cross_entropy(jnp.array([[0.0, 0.0]]), jnp.array([[0.5, 0.5]]))   # log 2
    Array(0.6931472, dtype=float32)
    """
    _check(reduction)
    axis = _class_axis(input)
    y = jnp.asarray(target)
    if jnp.issubdtype(y.dtype, jnp.integer):
        out = jl.softmax_cross_entropy_with_integer_labels(
            input,
            y,
            axis,
            class_weights=weight,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            reduction="weighted_mean" if reduction == "mean" else reduction,
        )
        return out
    per = jl.softmax_cross_entropy(
        input, y, axis, class_weights=weight, label_smoothing=label_smoothing
    )
    return _elementwise(per, reduction)


def nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    ignore_index: int = -100,
    reduction: TorchReduction = "mean",
) -> Array:
    r"""``torch.nn.functional.nll_loss``: ``-w_y · input[y]`` over the class axis 1.

    .. math:: \ell_n = -w_{y_n}\, x_{n, y_n}

    Calls :func:`jaxloss.negative_log_likelihood`; PyTorch's ``"mean"`` is
    ``"weighted_mean"`` (divided by ``Σ w_y`` over non-ignored targets).

    >>> import jax.numpy as jnp
    >>> nll_loss(jnp.log(jnp.array([[0.25, 0.75]])), jnp.array([1]))
    Array(0.2876821, dtype=float32)
    """
    _check(reduction)
    return jl.negative_log_likelihood(
        input,
        target,
        _class_axis(input),
        class_weights=weight,
        ignore_index=ignore_index,
        reduction="weighted_mean" if reduction == "mean" else reduction,
    )


def binary_cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    reduction: TorchReduction = "mean",
) -> Array:
    r"""``torch.nn.functional.binary_cross_entropy``: from probabilities, logs clamped at -100.

    .. math:: \ell = -w\,\bigl(y \max(\log p, -100) + (1 - y) \max(\log(1 - p), -100)\bigr)

    Calls :func:`jaxloss.binary_cross_entropy` with ``epsilon=0.0, log_min=-100.0`` (no Keras
    clip) and ``weights=weight``. At ``p`` exactly 0 or 1 the gradient through the clamped log
    is 0 here (PyTorch's is ``∓1e12``).

    >>> import jax.numpy as jnp
    >>> binary_cross_entropy(jnp.array([0.5, 0.0]), jnp.array([1.0, 1.0]))   # (log 2 + 100) / 2
    Array(50.346573, dtype=float32)
    """
    per = jl.binary_cross_entropy(input, target, epsilon=0.0, log_min=-100.0, weights=weight)
    return _elementwise(per, reduction)


def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    reduction: TorchReduction = "mean",
    pos_weight: ArrayLike | None = None,
) -> Array:
    r"""``torch.nn.functional.binary_cross_entropy_with_logits``.

    .. math:: \ell = -w\,\bigl(p\, y \log\sigma(x) + (1 - y) \log\sigma(-x)\bigr)

    Calls :func:`jaxloss.sigmoid_binary_cross_entropy` (``weights=weight``, ``pos_weight``).

    >>> import jax.numpy as jnp
    >>> binary_cross_entropy_with_logits(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))
    Array(0.6931472, dtype=float32)
    """
    per = jl.sigmoid_binary_cross_entropy(input, target, pos_weight=pos_weight, weights=weight)
    return _elementwise(per, reduction)


def mse_loss(
    input: ArrayLike,
    target: ArrayLike,
    *,
    reduction: TorchReduction = "mean",
    weight: ArrayLike | None = None,
) -> Array:
    r"""``torch.nn.functional.mse_loss``: ``w (x - y)²``; calls :func:`jaxloss.squared_error`.

    .. math:: \ell = w\,(x - y)^2

    >>> import jax.numpy as jnp
    >>> mse_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]))
    Array(2.5, dtype=float32)
    """
    return _elementwise(jl.squared_error(input, target, weights=weight), reduction)


def l1_loss(
    input: ArrayLike,
    target: ArrayLike,
    *,
    reduction: TorchReduction = "mean",
    weight: ArrayLike | None = None,
) -> Array:
    r"""``torch.nn.functional.l1_loss``: ``w |x - y|``; calls :func:`jaxloss.absolute_error`.

    .. math:: \ell = w\,\lvert x - y \rvert

    >>> import jax.numpy as jnp
    >>> l1_loss(jnp.array([1.0, -2.0]), jnp.array([0.0, 0.0]))
    Array(1.5, dtype=float32)
    """
    return _elementwise(jl.absolute_error(input, target, weights=weight), reduction)


def smooth_l1_loss(
    input: ArrayLike,
    target: ArrayLike,
    *,
    reduction: TorchReduction = "mean",
    beta: float = 1.0,
) -> Array:
    r"""``torch.nn.functional.smooth_l1_loss``; calls :func:`jaxloss.smooth_l1_loss`.

    .. math:: \ell = \begin{cases} 0.5\, d^2 / \beta & |d| < \beta \\
              |d| - 0.5\,\beta & \text{otherwise} \end{cases}

    >>> import jax.numpy as jnp
    >>> smooth_l1_loss(jnp.array([0.5, 3.0]), jnp.array([0.0, 0.0]))
    Array(1.3125, dtype=float32)
    """
    return _elementwise(jl.smooth_l1_loss(input, target, beta=beta), reduction)


def huber_loss(
    input: ArrayLike,
    target: ArrayLike,
    reduction: TorchReduction = "mean",
    delta: float = 1.0,
    weight: ArrayLike | None = None,
) -> Array:
    r"""``torch.nn.functional.huber_loss``; calls :func:`jaxloss.huber_loss`.

    .. math:: \ell = w \cdot \begin{cases} 0.5\, d^2 & |d| \le \delta \\
              \delta\,(|d| - 0.5\,\delta) & \text{otherwise} \end{cases}

    PyTorch's signature has no deprecated arguments here, so all are positional.

    >>> import jax.numpy as jnp
    >>> huber_loss(jnp.array([0.5, 3.0]), jnp.array([0.0, 0.0]))
    Array(1.3125, dtype=float32)
    """
    return _elementwise(jl.huber_loss(input, target, delta=delta, weights=weight), reduction)


def kl_div(
    input: ArrayLike,
    target: ArrayLike,
    *,
    reduction: Literal["none", "mean", "sum", "batchmean"] = "mean",
    log_target: bool = False,
) -> Array:
    r"""``torch.nn.functional.kl_div``: element-wise ``t (log t - input)``, input in log space.

    .. math:: \ell = t\,(\log t - x) \quad (0 \log 0 = 0), \qquad
              \text{or } e^{t}\,(t - x) \text{ with } \texttt{log\_target}

    Calls :func:`jaxloss.kl_divergence` (or :func:`jaxloss.kl_divergence_with_log_targets`)
    element by element. ``"mean"`` averages over every element, as PyTorch does (which warns
    that the KL divergence is ``"batchmean"``: the sum divided by the batch size).

    >>> import jax.numpy as jnp
    >>> q = jnp.log(jnp.array([[0.5, 0.5]]))
    >>> kl_div(q, jnp.array([[1.0, 0.0]]), reduction="batchmean")   # log 2
    Array(0.6931472, dtype=float32)
    """
    _check(reduction, ("none", "mean", "sum", "batchmean"))
    x, t = float_array(input, "input"), jnp.asarray(target)
    fn = jl.kl_divergence_with_log_targets if log_target else jl.kl_divergence
    per = fn(x[..., None], t[..., None], axis=-1)  # a trailing axis of one: element-wise terms
    if reduction == "batchmean":
        batch = x.shape[0] if x.ndim else 1
        return jl.reduce(per, reduction="sum") / batch
    return _elementwise(per, reduction)


def poisson_nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    log_input: bool = True,
    full: bool = False,
    *,
    eps: float = 1e-8,
    reduction: TorchReduction = "mean",
) -> Array:
    r"""``torch.nn.functional.poisson_nll_loss``; calls :func:`jaxloss.poisson_loss`.

    .. math:: \ell = e^{x} - y\,x \ \ (\texttt{log\_input}), \qquad
              x - y \log(x + \varepsilon) \ \ \text{otherwise}

    plus Stirling's term ``y log y - y + ½ log(2π y)`` for ``y > 1`` with ``full=True``.

    >>> import jax.numpy as jnp
    >>> poisson_nll_loss(jnp.array([0.0]), jnp.array([2.0]))   # e^0 - 2·0
    Array(1., dtype=float32)
    """
    per = jl.poisson_loss(input, target, log_input=log_input, full=full, epsilon=eps)
    return _elementwise(per, reduction)


def gaussian_nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    var: ArrayLike | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: TorchReduction = "mean",
) -> Array:
    r"""``torch.nn.functional.gaussian_nll_loss``; calls :func:`jaxloss.gaussian_nll_loss`.

    .. math:: \ell = \tfrac12\bigl(\log \max(\sigma^2, \epsilon)
              + (x - y)^2 / \max(\sigma^2, \epsilon)\bigr) \ (+\ \tfrac12 \log 2\pi)

    ``var`` is PyTorch's: the input's shape, one dimension fewer (one variance per example,
    ``[N]`` for ``[N, D]``: it is given a trailing axis here), the input's shape with a last
    dimension of 1, or a number.

    >>> import jax.numpy as jnp
    >>> gaussian_nll_loss(jnp.array([1.0, 2.0]), jnp.array([1.0, 0.0]), jnp.array([1.0, 4.0]))
    Array(0.5965736, dtype=float32)
    """
    x = float_array(input, "input")
    v = jnp.asarray(var, x.dtype)
    if v.ndim == x.ndim - 1 and v.ndim > 0 and v.shape == x.shape[:-1]:
        v = v[..., None]  # PyTorch's homoscedastic-per-example form
    per = jl.gaussian_nll_loss(x, target, v, full=full, eps=eps)
    return _elementwise(per, reduction)


def margin_ranking_loss(
    input1: ArrayLike,
    input2: ArrayLike,
    target: ArrayLike,
    margin: float = 0.0,
    *,
    reduction: TorchReduction = "mean",
) -> Array:
    r"""``torch.nn.functional.margin_ranking_loss``; calls :func:`jaxloss.margin_ranking_loss`.

    .. math:: \ell = \max\bigl(0,\ -t\,(x_1 - x_2) + m\bigr)

    >>> import jax.numpy as jnp
    >>> margin_ranking_loss(jnp.array([1.0]), jnp.array([2.0]), jnp.array([1.0]))
    Array(1., dtype=float32)
    """
    per = jl.margin_ranking_loss(input1, input2, target, margin=margin)
    return _elementwise(per, reduction)


def hinge_embedding_loss(
    input: ArrayLike,
    target: ArrayLike,
    margin: float = 1.0,
    *,
    reduction: TorchReduction = "mean",
) -> Array:
    r"""``torch.nn.functional.hinge_embedding_loss``; calls :func:`jaxloss.hinge_embedding_loss`.

    .. math:: \ell = x \text{ if } t = 1, \quad \max(0,\ m - x) \text{ if } t = -1

    >>> import jax.numpy as jnp
    >>> hinge_embedding_loss(jnp.array([0.3, 0.3]), jnp.array([1.0, -1.0]))
    Array(0.5, dtype=float32)
    """
    per = jl.hinge_embedding_loss(input, target, margin=margin)
    return _elementwise(per, reduction)


def cosine_embedding_loss(
    input1: ArrayLike,
    input2: ArrayLike,
    target: ArrayLike,
    margin: float = 0.0,
    *,
    reduction: TorchReduction = "mean",
) -> Array:
    r"""``torch.nn.functional.cosine_embedding_loss``; calls
    :func:`jaxloss.cosine_embedding_loss` along the last axis (PyTorch's dim 1 of ``[N, D]``).

    .. math:: \ell = 1 - \cos(a, b) \text{ if } t = 1, \quad
              \max(0,\ \cos(a, b) - m) \text{ if } t = -1

    >>> import jax.numpy as jnp
    >>> cosine_embedding_loss(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 1.0]]), jnp.array([1]))
    Array(1., dtype=float32)
    """
    per = jl.cosine_embedding_loss(input1, input2, target, margin=margin)
    return _elementwise(per, reduction)


def triplet_margin_loss(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    *,
    reduction: TorchReduction = "mean",
) -> Array:
    r"""``torch.nn.functional.triplet_margin_loss``; the math of :func:`jaxloss.triplet_margin_loss`
    with PyTorch's distance.

    .. math:: \ell = \max\bigl(d(a, p) - d(a, n) + m,\ 0\bigr), \qquad
              d(u, v) = \lVert u - v + \epsilon \rVert_p

    PyTorch's ``pairwise_distance`` adds ``eps`` to the difference (jaxloss's, optax's, adds it
    inside the root); ``swap=True`` uses ``min(d(a, n), d(p, n))`` for the negative. Inputs are
    ``[N, D]`` or an unbatched ``[D]``, the embedding axis last.

    >>> import jax.numpy as jnp
    >>> a, p, n = jnp.array([[0.0, 0.0]]), jnp.array([[0.0, 0.5]]), jnp.array([[0.0, 1.0]])
    >>> triplet_margin_loss(a, p, n, eps=0.0)    # 0.5 - 1.0 + 1.0
    Array(0.5, dtype=float32)
    >>> triplet_margin_loss(a, p, n, eps=0.0, swap=True)   # d(p, n) = 0.5 < d(a, n) = 1
    Array(1., dtype=float32)
    """
    _check(reduction)
    if not isinstance(swap, bool):
        raise TypeError(f"swap must be a Python bool; got {swap!r}.")
    xs = [
        float_array(v, name)
        for v, name in ((anchor, "anchor"), (positive, "positive"), (negative, "negative"))
    ]
    dtype = jnp.result_type(*(v.dtype for v in xs), jnp.float32)
    try:
        shape = jnp.broadcast_shapes(*(v.shape for v in xs))
    except ValueError:
        raise ValueError(
            f"anchor, positive and negative have shapes {[tuple(v.shape) for v in xs]}; they "
            "must broadcast together."
        ) from None
    if len(shape) not in (1, 2):
        raise ValueError(f"inputs must be [N, D] or [D] (PyTorch's); got shape {shape}.")
    a, pos, neg = (jnp.broadcast_to(v, shape).astype(dtype) for v in xs)
    per = jnp.maximum(_triplet_distances(a, pos, neg, p, eps, swap, inside=False) + margin, 0)
    return _elementwise(per, reduction)


def soft_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    *,
    reduction: TorchReduction = "mean",
) -> Array:
    r"""``torch.nn.functional.soft_margin_loss``: ``log(1 + exp(-t x))`` for ``t = ±1``.

    .. math:: \ell = \log\bigl(1 + e^{-t x}\bigr)

    The logistic loss of ±1 targets: :func:`jaxloss.sigmoid_binary_cross_entropy` with labels
    ``(t + 1) / 2``.

    >>> import jax.numpy as jnp
    >>> soft_margin_loss(jnp.array([0.0]), jnp.array([1.0]))   # log 2
    Array(0.6931472, dtype=float32)
    """
    t = jnp.asarray(target)
    per = jl.sigmoid_binary_cross_entropy(input, (t + 1) / 2)
    return _elementwise(per, reduction)


def multilabel_soft_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    reduction: TorchReduction = "mean",
) -> Array:
    r"""``torch.nn.functional.multilabel_soft_margin_loss``: the class-averaged sigmoid BCE.

    .. math:: \ell_n = \frac{1}{C} \sum_c w_c\, \mathrm{BCE}(x_{nc}, y_{nc})

    Calls :func:`jaxloss.sigmoid_binary_cross_entropy` with ``weights=weight`` (per class,
    broadcast over the last axis) and averages over the classes.

    >>> import jax.numpy as jnp
    >>> multilabel_soft_margin_loss(jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]]))
    Array(0.6931472, dtype=float32)
    """
    per = jl.sigmoid_binary_cross_entropy(input, target, weights=weight)
    return _elementwise(jnp.mean(per, axis=-1), reduction)


def multilabel_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    *,
    reduction: TorchReduction = "mean",
) -> Array:
    r"""``torch.nn.functional.multilabel_margin_loss``; calls
    :func:`jaxloss.multilabel_margin_loss`.

    .. math:: \ell_n = \frac{1}{C} \sum_{j \in Y_n} \sum_{i \notin Y_n} \max(0,\ 1 - (x_j - x_i))

    ``target`` is PyTorch's: the true class indices of each row, padded with -1 (entries
    after the first -1 are ignored); it is turned into the multi-hot set jaxloss takes, with
    a comparison against the class index (no scatter). A class listed twice counts once here
    (it is a set); PyTorch adds its terms twice.

    >>> import jax.numpy as jnp   # PyTorch's documented example
    >>> multilabel_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([[3, 0, -1, 1]]))
    Array(0.85, dtype=float32)
    """
    x = float_array(input, "input")
    t = integer_array(target, "target")
    if t.shape != x.shape:
        raise ValueError(
            f"target has shape {tuple(t.shape)}; expected the input shape {tuple(x.shape)} "
            "(class indices padded with -1, as in PyTorch)."
        )
    valid = jnp.cumprod(t != -1, axis=-1).astype(bool)  # up to the first -1
    classes = jnp.arange(x.shape[-1])
    members = (t[..., :, None] == classes) & valid[..., :, None]
    per = jl.multilabel_margin_loss(x, jnp.any(members, axis=-2))
    return _elementwise(per, reduction)


def multi_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    p: int = 1,
    margin: float = 1.0,
    weight: ArrayLike | None = None,
    *,
    reduction: TorchReduction = "mean",
) -> Array:
    r"""``torch.nn.functional.multi_margin_loss``; calls :func:`jaxloss.multi_margin_loss`.

    .. math:: \ell_n = \frac{w_{y}}{C} \sum_{j \ne y} \max(0,\ m - x_y + x_j)^p

    PyTorch's ``"mean"`` divides by the number of examples even with ``weight`` (jaxloss's
    ``"mean"``).

    >>> import jax.numpy as jnp   # PyTorch's documented example
    >>> multi_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))
    Array(0.325, dtype=float32)
    """
    _check(reduction)
    return jl.multi_margin_loss(
        input, target, margin=margin, p=p, class_weights=weight, axis=-1, reduction=reduction
    )


def ctc_loss(
    log_probs: ArrayLike,
    targets: ArrayLike,
    input_lengths: ArrayLike,
    target_lengths: ArrayLike,
    blank: int = 0,
    reduction: TorchReduction = "mean",
    zero_infinity: bool = False,
) -> Array:
    r"""``torch.nn.functional.ctc_loss``: ``log_probs`` ``[T, N, C]``, padded ``targets``.

    .. math:: \ell_n = -\log \sum_{\pi \in \mathcal B^{-1}(y_n)} \prod_t p_{t, \pi_t}

    Calls :func:`jaxloss.ctc_loss` (optax's layout: ``[N, T, C]`` logits and paddings, made
    here from the lengths). PyTorch's ``"mean"`` divides each loss by its target length
    (at least 1) and averages over the batch. A target with no alignment (too long for its
    input, counting a blank between repeated labels) has loss ``inf``, as in PyTorch;
    ``zero_infinity=True`` makes it 0 with zero gradient (it is left out through ``where``)
    and still counted by ``"mean"``. ``targets`` must be ``[N, S]`` (padded); PyTorch's
    concatenated 1-D form needs the lengths on the host to split and is not taken.

    >>> import jax.numpy as jnp
    >>> log_probs = jnp.log(jnp.full((2, 1, 2), 0.5))           # T=2, N=1, C=2 (blank 0)
    >>> ctc_loss(log_probs, jnp.array([[1]]), jnp.array([2]), jnp.array([1]))   # -log(3/4)
    Array(0.2876821, dtype=float32)
    """
    _check(reduction)
    x = jnp.swapaxes(float_array(log_probs, "log_probs"), 0, 1)  # [N, T, C]
    y = integer_array(targets, "targets")
    if y.ndim != 2:
        raise ValueError(
            f"targets must be [N, S], padded class indices; got shape {tuple(y.shape)} (the "
            "concatenated 1-D form of PyTorch is not supported: pad the targets)."
        )
    lengths_in = integer_array(input_lengths, "input_lengths")
    lengths_out = integer_array(target_lengths, "target_lengths")
    logit_paddings = (jnp.arange(x.shape[1]) >= lengths_in[:, None]).astype(x.dtype)
    label_paddings = (jnp.arange(y.shape[1]) >= lengths_out[:, None]).astype(x.dtype)
    # PyTorch's loss is inf when no alignment exists: the input is shorter than the target
    # plus one blank between each pair of repeated labels. jaxloss (like optax) gives a large
    # finite value there instead, so the convention is restored here.
    later = jnp.arange(1, y.shape[1]) < lengths_out[:, None]
    repeats = jnp.sum((y[:, 1:] == y[:, :-1]) & later, axis=-1)
    feasible = jax.lax.stop_gradient(lengths_in >= lengths_out + repeats)
    per = jl.ctc_loss(
        x,
        logit_paddings,
        y,
        label_paddings,
        blank_id=blank,
        where=feasible if zero_infinity else None,
    )
    if not zero_infinity:
        per = jnp.where(feasible, per, jnp.inf)
    if reduction == "mean":
        per = per / jnp.maximum(lengths_out, 1).astype(per.dtype)
    return _elementwise(per, reduction)


def _teach_keywords() -> None:
    """Unknown keywords raise a ``TypeError`` naming the fix, as in the rest of jaxloss:
    ``size_average=``/``reduce=`` name ``reduction=``, misspellings the closest name."""
    from jaxloss._checks import teach_keywords

    for name in __all__:
        globals()[name] = teach_keywords(globals()[name])


_teach_keywords()
