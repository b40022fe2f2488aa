"""Semi-supervised objectives: pseudo-labels, consistency, entropy, VAT, MixMatch pieces, label
spreading.

Unlabeled examples carry the label ``-1`` (scikit-learn's convention) or an all-zero one-hot row.
The core cross-entropies already leave both out of the supervised loss and of its mean
(``ignore_index=-1``, zero rows); :func:`labeled_mask` gives the same mask for your own code.
The unsupervised objectives here take the contract arguments ``weights``, ``where`` and
``reduction`` of :func:`jaxloss.reduce` (default ``reduction="none"``: one loss per example)
and put ``stop_gradient`` where the published methods put it:

=========================  =================================================================
:func:`pseudo_label_loss`   Pseudo-Label / FixMatch: confident hard (or soft) targets from the
                            weak view, under ``stop_gradient``; cross-entropy on the strong view
:func:`consistency_loss`    Π-model / Mean Teacher (MSE of probabilities), UDA (sharpened KL
                            with a confidence mask); the teacher under ``stop_gradient``
:func:`entropy_loss`        entropy minimisation
:func:`vat_loss`            virtual adversarial training; clean prediction and ``r_adv`` under
                            ``stop_gradient``
:func:`mixup`, :func:`sharpen`  MixMatch pieces
:func:`sigmoid_rampup`      the ``exp(-5(1-t)²)`` ramp of the unsupervised weight
:func:`label_spreading`,    graph-based transduction equal to scikit-learn's, jit-compatible,
:func:`label_propagation`   with a log-domain RBF graph that cannot underflow to zero degrees
=========================  =================================================================

Class axes are the last axis. Thresholded objectives are NaN-free when no example is
confident: the loss is 0 with zero gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.core
import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    check_same_shape,
    compute_dtype,
    float_array,
    is_label,
    reshard_like,
    static_float,
    upcast,
)
from jaxloss._reduction import AxisName, Reduction, element_mask, reduce_elements, sanitize

__all__ = [
    "labeled_mask",
    "pseudo_label_loss",
    "consistency_loss",
    "entropy_loss",
    "vat_loss",
    "mixup",
    "sharpen",
    "sigmoid_rampup",
    "label_spreading",
    "label_propagation",
]

Normalize = Literal["all", "selected"]


# ---------------------------------------------------------------------------------------------
# Labeled / unlabeled.


def labeled_mask(labels: ArrayLike, *, unlabeled: int = -1) -> Array:
    """Which examples carry a label: integer labels ``!= unlabeled``, or non-zero label rows.

    Args:
      labels: integer class indices of any shape (``unlabeled`` marks a missing label, -1 by
        default as in scikit-learn), or float probability / one-hot rows ``[..., C]`` whose
        all-zero rows are unlabeled.
      unlabeled: the integer marker of a missing label (ignored for float labels).

    Returns:
      A boolean mask, ``labels.shape`` for integer labels or ``labels.shape[:-1]`` for rows.
      It is what the core cross-entropies use: pass ``ignore_index=-1`` (integer labels) or the
      zero rows as they are, and unlabeled examples get no supervised signal and stay out of
      the supervised mean.

    >>> import jax.numpy as jnp
    >>> labeled_mask(jnp.array([3, -1, 0]))
    Array([ True, False,  True], dtype=bool)
    >>> labeled_mask(jnp.array([[0.0, 1.0], [0.0, 0.0]]))
    Array([ True, False], dtype=bool)
    """
    labels = jnp.asarray(labels)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if not isinstance(unlabeled, int):
            raise TypeError(f"unlabeled must be a Python int; got {unlabeled!r}.")
        return labels != unlabeled
    if jnp.issubdtype(labels.dtype, jnp.floating) or labels.dtype == jnp.bool_:
        if labels.ndim == 0:
            raise ValueError("float labels must be rows [..., C]; got a scalar.")
        return jnp.any(labels != 0, axis=-1)
    raise TypeError(f"labels must be an integer or floating-point array; got dtype {labels.dtype}.")


# ---------------------------------------------------------------------------------------------
# Shared pieces.


def _check_normalize(normalize: str) -> None:
    if normalize not in ("all", "selected"):
        raise ValueError(f"normalize must be 'all' or 'selected'; got {normalize!r}.")


def _logits(x: ArrayLike, name: str) -> Array:
    x = upcast(float_array(x, name))
    if x.ndim == 0:
        raise ValueError(f"{name} must have a class axis (the last); got a scalar.")
    return x


def _kl_rows(log_q: Array, log_p: Array) -> Array:
    """``Σ_c q_c (log q_c - log p_c)`` with ``0 log 0 = 0`` (target ``q``, prediction ``p``)."""
    q = jnp.exp(log_q)
    safe_log_q = jnp.where(q > 0, log_q, 0)
    return jnp.sum(jnp.where(q > 0, q * (safe_log_q - log_p), 0), axis=-1)


# ---------------------------------------------------------------------------------------------
# Objectives.


def pseudo_label_loss(
    logits_weak: ArrayLike,
    logits_strong: ArrayLike,
    *,
    threshold: float = 0.95,
    temperature: float = 1.0,
    hard: bool = True,
    normalize: Normalize = "all",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> tuple[Array, Array]:
    r"""Pseudo-Label / FixMatch loss: confident targets from the weak view, CE on the strong view.

    .. math::
        q = \mathrm{sg}\bigl(\mathrm{softmax}(z^{weak} / T)\bigr), \quad
        m = [\max_c q_c \ge \tau], \quad
        \ell = -m \sum_c t_c \log \mathrm{softmax}(z^{strong})_c

    with ``t = one_hot(argmax q)`` (``hard=True``, FixMatch and Lee's Pseudo-Label) or
    ``t = q`` (``hard=False``, soft targets, sharpened by ``T < 1``). ``sg`` is
    ``stop_gradient``: no gradient reaches ``logits_weak``. Pass the same logits twice for
    plain Pseudo-Label.

    Args:
      logits_weak: ``[..., C]`` logits of the weakly augmented (or clean) unlabeled inputs.
      logits_strong: ``[..., C]`` logits of the strongly augmented view, same shape.
      threshold: confidence ``τ``; ``0`` keeps every example.
      temperature: ``T`` applied to the weak logits before the threshold and the target.
      hard: one-hot targets (default) or soft ones.
      normalize: what a mean divides by. ``"all"`` (default, the reference FixMatch code):
        unconfident examples count, with loss 0 — ``reduction="mean"`` divides by the number of
        (included) unlabeled examples. ``"selected"``: unconfident examples are left out like
        ``where=False`` — ``"mean"`` divides by the number of confident ones (0 when there are
        none, never NaN).
      weights, where: the contract, against the loss shape ``logits.shape[:-1]``; use ``where``
        to pick the unlabeled rows of a mixed batch.
      reduction, axis_name: see :func:`jaxloss.reduce` (``"none"`` by default).

    Returns:
      ``(loss, mask_rate)``: the loss (per example, or reduced) and the fraction of included
      examples whose confidence reaches ``τ`` (0 when none is included; over the whole batch
      with ``axis_name``), for logging.

    Edges: when no example is confident the loss is 0 with zero gradients in both modes.

    >>> import jax.numpy as jnp
    >>> weak = jnp.array([[4.0, 0.0], [0.0, 0.1]])    # only the first row is confident
    >>> strong = jnp.array([[1.0, 0.0], [0.0, 0.0]])
    >>> pseudo_label_loss(weak, strong, threshold=0.9)
    (Array([0.31326163, 0.        ], dtype=float32), Array(0.5, dtype=float32))
    >>> pseudo_label_loss(weak, strong, threshold=0.9, reduction="mean")[0]   # / 2 examples
    Array(0.15663081, dtype=float32)
    >>> pseudo_label_loss(weak, strong, threshold=0.9, normalize="selected",
    ...                   reduction="mean")[0]                              # / 1 confident
    Array(0.31326163, dtype=float32)
    """
    weak = _logits(logits_weak, "logits_weak")
    strong = _logits(logits_strong, "logits_strong")
    check_same_shape(weak, "logits_weak", strong, "logits_strong")
    _check_normalize(normalize)
    static_float(threshold, "threshold", low=0.0, high=1.0)
    static_float(temperature, "temperature", low=0.0, low_open=True)
    loss_shape = strong.shape[:-1]
    outer = element_mask(loss_shape, weights=weights, where=where)
    weak, strong = sanitize(weak, outer), sanitize(strong, outer)

    log_q = jax.nn.log_softmax(jax.lax.stop_gradient(weak) / temperature, axis=-1)
    q = jnp.exp(log_q)
    confident = jnp.max(q, axis=-1) >= threshold
    target = jax.nn.one_hot(jnp.argmax(q, axis=-1), q.shape[-1], dtype=q.dtype) if hard else q
    per = -jnp.sum(target * jax.nn.log_softmax(strong, axis=-1), axis=-1)
    mask = element_mask(
        loss_shape,
        weights=weights,
        where=where,
        include=confident if normalize == "selected" else None,
    )
    per = jnp.where(confident, per, 0)
    loss = reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )
    # The fraction of included examples that are confident (0 when none is), global over
    # ``axis_name`` like the loss.
    rate = reduce_elements(
        confident.astype(jnp.float32), mask=outer, reduction="mean", axis_name=axis_name
    )
    return loss, jax.lax.stop_gradient(rate)


def consistency_loss(
    student_logits: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    kind: Literal["mse", "kl"] = "mse",
    temperature: float = 1.0,
    threshold: float | None = None,
    stop_gradient_teacher: bool = True,
    normalize: Normalize = "all",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Consistency between a student and a teacher prediction: Π-model, Mean Teacher, UDA.

    .. math::
        q = \mathrm{softmax}(z^{teacher} / T), \quad p = \mathrm{softmax}(z^{student}) \\
        \ell_{mse} = \tfrac1C \sum_c (p_c - q_c)^2, \qquad
        \ell_{kl} = \sum_c q_c (\log q_c - \log p_c)

    ``"mse"`` is the Π-model's and Mean Teacher's squared error between probabilities, averaged
    over classes (Mean Teacher's ``softmax_mse_loss`` / C); ``"kl"`` is UDA's
    ``KL(teacher ‖ student)`` with the teacher sharpened by ``T`` (UDA uses ``T = 0.4``). The
    temperature applies to the teacher only. With ``threshold`` (UDA's confidence mask, 0.8
    there), examples whose *unsharpened* teacher confidence ``max softmax(z_teacher)`` is below
    it give 0.

    Args:
      student_logits: ``[..., C]`` logits that receive the gradient.
      teacher_logits: ``[..., C]`` target logits (the EMA model's, or a second noisy pass).
      kind: ``"mse"`` or ``"kl"``.
      temperature: ``T > 0`` for the teacher.
      threshold: confidence mask ``max q ≥ τ`` (``None``: no mask).
      stop_gradient_teacher: put the teacher under ``stop_gradient`` (Mean Teacher, UDA;
        default). ``False`` lets the gradient flow into both branches (the original Π-model).
      normalize: with ``threshold``, whether unconfident examples count in means (``"all"``,
        UDA's code) or are left out (``"selected"``); see :func:`pseudo_label_loss`.
      weights, where, reduction, axis_name: the contract, against ``logits.shape[:-1]``.

    Returns:
      The loss, per example (``reduction="none"``) or reduced.

    >>> import jax.numpy as jnp
    >>> student = jnp.array([[0.0, 0.0]])
    >>> teacher = jnp.array([[jnp.log(3.0), 0.0]])               # q = (0.75, 0.25)
    >>> consistency_loss(student, teacher)                        # ((0.25)² + (0.25)²) / 2
    Array([0.0625], dtype=float32)
    >>> consistency_loss(student, teacher, kind="kl")             # 0.75 log 1.5 + 0.25 log 0.5
    Array([0.13081208], dtype=float32)
    >>> consistency_loss(student, teacher, kind="kl", threshold=0.8)
    Array([0.], dtype=float32)
    """
    student = _logits(student_logits, "student_logits")
    teacher = _logits(teacher_logits, "teacher_logits")
    check_same_shape(student, "student_logits", teacher, "teacher_logits")
    if kind not in ("mse", "kl"):
        raise ValueError(f"kind must be 'mse' or 'kl'; got {kind!r}.")
    _check_normalize(normalize)
    static_float(temperature, "temperature", low=0.0, low_open=True)
    if threshold is not None:
        static_float(threshold, "threshold", low=0.0, high=1.0)
    loss_shape = student.shape[:-1]
    outer = element_mask(loss_shape, weights=weights, where=where)
    student, teacher = sanitize(student, outer), sanitize(teacher, outer)
    if stop_gradient_teacher:
        teacher = jax.lax.stop_gradient(teacher)

    log_q = jax.nn.log_softmax(teacher / temperature, axis=-1)
    log_p = jax.nn.log_softmax(student, axis=-1)
    if kind == "mse":
        per = jnp.mean((jnp.exp(log_p) - jnp.exp(log_q)) ** 2, axis=-1)
    else:
        per = _kl_rows(log_q, log_p)
    include = None
    if threshold is not None:
        confidence = jnp.max(jax.nn.softmax(jax.lax.stop_gradient(teacher), axis=-1), axis=-1)
        confident = confidence >= threshold
        per = jnp.where(confident, per, 0)
        include = confident if normalize == "selected" else None
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def entropy_loss(
    logits: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Entropy of the predicted distribution (entropy minimisation, Grandvalet & Bengio 2004).

    .. math:: \ell = -\sum_c p_c \log p_c, \quad p = \mathrm{softmax}(z)

    Computed from ``log_softmax`` (finite for logits of any size; ``-inf`` logits, i.e. masked
    classes, contribute 0). Minimising it pushes decision boundaries away from unlabeled data.

    Args:
      logits: ``[..., C]``.
      weights, where, reduction, axis_name: the contract, against ``logits.shape[:-1]``.

    >>> import jax.numpy as jnp
    >>> entropy_loss(jnp.array([[0.0, 0.0], [jnp.log(3.0), 0.0]]))  # log 2, -(¾ log ¾ + ¼ log ¼)
    Array([0.6931472 , 0.56233513], dtype=float32)
    """
    x = _logits(logits, "logits")
    loss_shape = x.shape[:-1]
    mask = element_mask(loss_shape, weights=weights, where=where)
    x = sanitize(x, mask)
    log_p = jax.nn.log_softmax(x, axis=-1)
    p = jnp.exp(log_p)
    per = -jnp.sum(jnp.where(p > 0, p * jnp.where(p > 0, log_p, 0), 0), axis=-1)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def _unit_per_example(d: Array) -> Array:
    """Normalise each example (axis 0) to unit L2 norm, Miyato's two-step way (no underflow)."""
    axes = tuple(range(1, d.ndim))
    d = d / (1e-12 + jnp.max(jnp.abs(d), axis=axes, keepdims=True, initial=0.0))
    return d / jnp.sqrt(1e-6 + jnp.sum(d * d, axis=axes, keepdims=True))


def vat_loss(
    apply_fn: Callable[[Any, Array], Array],
    params: Any,
    x: ArrayLike,
    key: Array,
    *,
    xi: float = 1e-6,
    epsilon: float = 1.0,
    power_iterations: int = 1,
    logits: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Virtual adversarial training loss (Miyato et al. 2018).

    .. math::
        p = \mathrm{sg}(\mathrm{softmax}(f(x))), \quad
        r_{adv} = \mathrm{sg}\Bigl(\epsilon\, \frac{g}{\|g\|}\Bigr), \quad
        g = \nabla_r \mathrm{KL}\bigl(p \,\|\, \mathrm{softmax}(f(x + r))\bigr)\Big|_{r = \xi d}, \\
        \ell = \mathrm{KL}\bigl(p \,\|\, \mathrm{softmax}(f(x + r_{adv}))\bigr)

    ``d`` starts as a random unit vector per example and is refined by ``power_iterations``
    steps of the power method (``d ← g / ‖g‖``). As in the reference code, the clean
    prediction and ``r_adv`` are under ``stop_gradient``: the gradient w.r.t. ``params`` flows
    only through ``f(x + r_adv)``.

    Args:
      apply_fn: ``apply_fn(params, x) -> logits [B, C]``; deterministic (close over any
        dropout key yourself). No batch statistics should couple examples.
      params: the model parameters (any pytree).
      x: ``[B, ...]`` inputs; the perturbation is normalised per example over all axes but
        the first.
      key: PRNG key for the initial random direction.
      xi: finite-difference step of the power iteration (1e-6 in the reference code).
      epsilon: norm of the adversarial perturbation, in input units (the main knob: about
        0.5–3 for inputs scaled to [0, 1]).
      power_iterations: number of power-method steps (1 in the paper).
      logits: the clean logits ``apply_fn(params, x)`` if you already have them (saves a
        forward pass); they are used under ``stop_gradient``.
      weights, where, reduction, axis_name: the contract, against the per-example loss ``[B]``.

    Returns:
      The loss, per example (``[B]``) or reduced.

    >>> import jax, jax.numpy as jnp
    >>> apply_fn = lambda w, x: x @ w
    >>> w = jnp.array([[2.0, -2.0], [0.0, 0.0]])      # only x[0] matters
    >>> x = jnp.array([[0.0, 0.0]])
    >>> vat_loss(apply_fn, w, x, jax.random.key(0), epsilon=0.5)   # r_adv = ±0.5 e_0
    Array([0.43378], dtype=float32)
    """
    x = upcast(float_array(x, "x"))
    if x.ndim == 0:
        raise ValueError("x must have a leading batch axis; got a scalar.")
    if not isinstance(power_iterations, int) or power_iterations < 1:
        raise ValueError(f"power_iterations must be a positive int; got {power_iterations!r}.")
    static_float(epsilon, "epsilon", low=0.0)
    static_float(xi, "xi", low=0.0, low_open=True)
    mask = element_mask(x.shape[:1], weights=weights, where=where)
    x = sanitize(x, mask)
    x = jax.lax.stop_gradient(x)
    clean = apply_fn(params, x) if logits is None else jnp.asarray(logits)
    clean = jax.lax.stop_gradient(upcast(float_array(clean, "logits")))
    if clean.ndim != 2 or clean.shape[0] != x.shape[0]:
        raise ValueError(
            f"apply_fn(params, x) (or logits) must have shape [B, C] with B = {x.shape[0]}; "
            f"got {tuple(clean.shape)}."
        )
    log_p = jax.nn.log_softmax(sanitize(clean, mask), axis=-1)
    frozen = jax.lax.stop_gradient(params)
    keep = 1.0 if mask is None else mask.astype(x.dtype)

    def divergence(r: Array) -> Array:
        log_q = jax.nn.log_softmax(upcast(apply_fn(frozen, x + r)), axis=-1)
        return jnp.sum(keep * _kl_rows(log_p, log_q))

    d = jax.random.normal(key, x.shape, x.dtype)
    for _ in range(power_iterations):
        d = jax.grad(divergence)(xi * _unit_per_example(d))
    r_adv = jax.lax.stop_gradient(epsilon * _unit_per_example(d))
    log_q = jax.nn.log_softmax(upcast(apply_fn(params, x + r_adv)), axis=-1)
    per = _kl_rows(log_p, log_q)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


# ---------------------------------------------------------------------------------------------
# MixMatch pieces and ramps.


def mixup(
    key: Array,
    x: ArrayLike,
    y: ArrayLike,
    *,
    alpha: float,
    per_example: bool = False,
    keep_first: bool = False,
) -> tuple[Array, Array]:
    r"""mixup (Zhang et al. 2018): convex combinations of examples and of their label rows.

    .. math:: \lambda \sim \mathrm{Beta}(\alpha, \alpha), \quad
              \tilde x = \lambda x + (1 - \lambda) x_{\pi}, \quad
              \tilde y = \lambda y + (1 - \lambda) y_{\pi}

    with ``π`` a random permutation of the batch (axis 0).

    Args:
      key: PRNG key.
      x: ``[B, ...]`` float inputs.
      y: ``[B, C]`` float label rows (one-hot, probabilities, or MixMatch's sharpened guesses).
        One-hot encode integer labels first (:func:`jaxloss.one_hot`).
      alpha: ``α > 0`` of the Beta distribution.
      per_example: one ``λ`` per example instead of one per batch (the reference code's).
      keep_first: ``λ ← max(λ, 1 - λ)`` so each mixed example stays closer to its own
        (MixMatch's λ').

    Returns:
      ``(x_mixed, y_mixed)``, with the shapes and dtypes of ``x`` and ``y``.

    >>> import jax, jax.numpy as jnp
    >>> x = jnp.arange(4.0).reshape(2, 2); y = jnp.eye(2)
    >>> xm, ym = mixup(jax.random.key(0), x, y, alpha=0.75)
    >>> bool(jnp.allclose(ym.sum(axis=1), 1.0)), xm.shape
    (True, (2, 2))
    """
    x = float_array(x, "x")
    y = jnp.asarray(y)
    if not jnp.issubdtype(y.dtype, jnp.floating):
        raise TypeError(
            f"y must be float label rows [B, C]; got dtype {y.dtype}. One-hot encode "
            "integer labels first."
        )
    if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y need the same leading batch axis; got shapes {tuple(x.shape)} "
            f"and {tuple(y.shape)}."
        )
    static_float(alpha, "alpha", low=0.0, low_open=True)
    batch = x.shape[0]
    k_lam, k_perm = jax.random.split(key)
    lam = jax.random.beta(
        k_lam, alpha, alpha, shape=(batch,) if per_example else (), dtype=compute_dtype(x.dtype)
    )
    if keep_first:
        lam = jnp.maximum(lam, 1.0 - lam)
    perm = jax.random.permutation(k_perm, batch)

    def mix(a: Array) -> Array:
        lam_a = lam.reshape(lam.shape + (1,) * (a.ndim - lam.ndim)).astype(a.dtype)
        return lam_a * a + (1 - lam_a) * a[perm]

    return mix(x), mix(y)


def sharpen(probs: ArrayLike, temperature: float, *, axis: int = -1) -> Array:
    r"""Temperature sharpening of a distribution (MixMatch): ``p^{1/T} / Σ p^{1/T}``.

    .. math:: \mathrm{sharpen}(p, T)_c = \frac{p_c^{1/T}}{\sum_k p_k^{1/T}}

    Computed as ``softmax(log p / T)``: no overflow for small ``T``, zero probabilities stay
    zero with a finite gradient. ``T → 0`` approaches one-hot; ``T = 1`` returns ``p``
    normalised.

    >>> import jax.numpy as jnp
    >>> sharpen(jnp.array([0.6, 0.4]), 0.5)                      # (.36, .16) / .52
    Array([0.6923077, 0.3076923], dtype=float32)
    """
    p = upcast(float_array(probs, "probs"))
    static_float(temperature, "temperature", low=0.0, low_open=True)
    positive = p > 0
    log_p = jnp.where(positive, jnp.log(jnp.where(positive, p, 1)), -jnp.inf)
    return jax.nn.softmax(log_p / temperature, axis=axis)


def sigmoid_rampup(step: ArrayLike, rampup_steps: int | ArrayLike) -> Array:
    r"""The sigmoid-shaped ramp-up of Laine & Aila and Mean Teacher: ``exp(-5 (1 - t)²)``.

    .. math:: w(s) = \exp\bigl(-5\,(1 - t)^2\bigr), \quad t = \mathrm{clip}(s / S, 0, 1)

    Multiply the unsupervised loss by ``λ_max · sigmoid_rampup(step, S)``. It is jit-friendly
    and usable as an optax schedule (``functools.partial(sigmoid_rampup, rampup_steps=S)``).
    ``rampup_steps = 0`` gives 1 from the start. A *linear* ramp is what
    ``optax.linear_schedule(0.0, 1.0, S)`` already is; jaxloss does not duplicate it.

    >>> sigmoid_rampup(0, 100), sigmoid_rampup(50, 100), sigmoid_rampup(200, 100)
    (Array(0.00673795, dtype=float32), Array(0.2865048, dtype=float32), Array(1., dtype=float32))
    """
    dtype = jnp.result_type(float)  # float32, or float64 when x64 is enabled
    step = jnp.asarray(step, dtype)
    total = jnp.asarray(rampup_steps, dtype)
    t = jnp.clip(step / jnp.where(total > 0, total, 1.0), 0.0, 1.0)
    return jnp.where(total > 0, jnp.exp(-5.0 * (1.0 - t) ** 2), 1.0)


# ---------------------------------------------------------------------------------------------
# Graph-based transduction.

Kernel = Literal["rbf", "knn", "precomputed"]
Method = Literal["iterate", "solve"]


def label_spreading(
    x_or_affinity: ArrayLike,
    labels: ArrayLike,
    *,
    kernel: Kernel = "rbf",
    gamma: float | ArrayLike = 20.0,
    n_neighbors: int = 7,
    alpha: float | ArrayLike = 0.2,
    max_iter: int = 30,
    tol: float = 1e-3,
    gamma_scale: float | ArrayLike | None = None,
    num_classes: int | None = None,
    method: Method = "iterate",
    log_domain: bool = False,
) -> Array:
    r"""Label spreading (Zhou et al. 2004), equal to scikit-learn's ``LabelSpreading``.

    .. math::
        S = D^{-1/2} W D^{-1/2}\ (\text{zero diagonal}), \qquad
        F \leftarrow \alpha S F + (1 - \alpha) Y, \qquad
        \text{result} = F / \textstyle\sum_c F_c

    ``W`` is the RBF graph ``exp(-γ‖x_i - x_j‖²)`` or the k-nearest-neighbour connectivity
    graph (each row links its ``n_neighbors`` nearest points, itself included), ``D`` its
    degrees without self-loops, ``Y`` the one-hot labels (zero rows for unlabeled points).
    The iteration, its stopping rule (``Σ|F - F_prev| < tol``, checked before each of at most
    ``max_iter`` steps) and the final row normalisation are scikit-learn's, so the result equals
    ``LabelSpreading(...).fit(x, labels).label_distributions_`` with the same parameters.

    Unlike scikit-learn, the RBF graph is built in the log domain: ``log W = -γ d²`` and
    ``log D = logsumexp(log W)``, so no degree underflows to 0 (scikit-learn then silently
    labels everything class 0) and nothing is NaN for any ``γ``. With a very large ``γ``
    (raw 0–16 pixels and the default 20) the *normalised* links of most points still underflow
    and their rows stay all-zero (their ``argmax`` is meaningless): pick ``γ`` from the data
    with ``gamma_scale``, or run the whole iteration in the log domain with
    ``log_domain=True`` (``log F ← logaddexp(log α + logsumexp_j(log S_ij + log F_j),
    log((1-α)Y))``: exact for any ``γ``, at the cost of an ``[N, N, C]`` log-sum-exp per step
    instead of a matmul).

    The graph couples every pair of points, so under ``jit`` with the point axis sharded over
    an explicit-axes mesh the points (or affinities) and the ``[N, C]`` label rows are first
    replicated (an all-gather of the point axis); the result is replicated too.

    Args:
      x_or_affinity: ``[N, D]`` points, or an ``[N, N]`` non-negative affinity matrix with
        ``kernel="precomputed"`` (its diagonal is ignored).
      labels: ``[N]`` integer labels with ``-1`` (any value outside ``[0, num_classes)``) for
        unlabeled points, or ``[N, C]`` float label rows with all-zero rows for unlabeled ones.
      kernel: ``"rbf"``, ``"knn"`` or ``"precomputed"``.
      gamma: RBF ``γ`` (scikit-learn's default 20 suits features of size ~0.1–1).
      n_neighbors: ``k`` of the knn graph (static).
      alpha: clamping factor in (0, 1): the share of a point's label taken from its neighbours.
      max_iter, tol: scikit-learn's stopping rule (``method="iterate"``); both may be traced.
      gamma_scale: if given, ``γ = gamma_scale / median‖x_i - x_j‖²`` (over pairs ``i ≠ j``),
        a scale-free choice (larger is sparser; 20–100 suits the digits); overrides ``gamma``.
      num_classes: ``C`` for integer labels; required under ``jit`` (otherwise
        ``max(labels) + 1``).
      method: ``"iterate"`` (scikit-learn's loop, a ``lax.while_loop``: forward-mode and
        value only) or ``"solve"``, the converged closed form
        ``F = (1 - α)(I - αS)^{-1} Y``, differentiable w.r.t. ``x``, ``gamma`` and ``alpha``.
      log_domain: iterate on ``log F`` (``method="iterate"`` only): no underflow for any ``γ``;
        equal to the default where that does not underflow.

    Returns:
      ``[N, C]`` label distributions (rows sum to 1, or are all zero when nothing reached
      the point), in the dtype of ``x`` (float32 for 16-bit inputs).

    >>> import jax.numpy as jnp
    >>> x = jnp.array([[0.0], [0.1], [1.0], [1.1]])
    >>> dist = label_spreading(x, jnp.array([0, -1, -1, 1]), gamma=10.0)
    >>> dist.argmax(axis=1)
    Array([0, 0, 1, 1], dtype=int32)
    """
    static_float(alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True)
    log_w, y = _graph_inputs(
        x_or_affinity,
        labels,
        kernel,
        gamma,
        gamma_scale,
        n_neighbors,
        num_classes,
        max_iter,
        method,
        log_domain,
    )
    n = log_w.shape[0]
    eye = jnp.eye(n, dtype=bool)
    log_w = jnp.where(eye, -jnp.inf, log_w)
    # scipy's normalised Laplacian: degrees are column sums without self-loops, 1 if isolated.
    log_deg = jax.nn.logsumexp(log_w, axis=0)
    log_deg = jnp.where(jnp.isfinite(log_deg), log_deg, 0.0)
    log_s = log_w - 0.5 * log_deg[:, None] - 0.5 * log_deg[None, :]
    alpha = jnp.asarray(alpha, y.dtype)
    if log_domain:
        log_y = jnp.log(1 - alpha) + _safe_log(y)
        log_f = _iterate(
            lambda lf: jnp.logaddexp(jnp.log(alpha) + _log_matmul(log_s, lf), log_y),
            _safe_log(y),
            max_iter,
            tol,
            log_domain=True,
        )
        return _softmax_rows(log_f)
    s = jnp.exp(log_s)
    y_static = (1 - alpha) * y
    if method == "solve":
        f = jnp.linalg.solve(jnp.eye(n, dtype=y.dtype) - alpha * s, y_static)
    else:
        f = _iterate(lambda f: alpha * (s @ f) + y_static, y, max_iter, tol)
    return _normalize_rows(f)


def label_propagation(
    x_or_affinity: ArrayLike,
    labels: ArrayLike,
    *,
    kernel: Kernel = "rbf",
    gamma: float | ArrayLike = 20.0,
    n_neighbors: int = 7,
    max_iter: int = 1000,
    tol: float = 1e-3,
    gamma_scale: float | ArrayLike | None = None,
    num_classes: int | None = None,
    method: Method = "iterate",
    log_domain: bool = False,
) -> Array:
    r"""Label propagation (Zhu & Ghahramani 2002), equal to scikit-learn's ``LabelPropagation``.

    .. math::
        F \leftarrow \mathrm{rownorm}(W F), \quad F_{labeled} \leftarrow Y_{labeled}, \qquad
        \text{result} = F / \textstyle\sum_c F_c

    with the graph ``W`` of :func:`label_spreading` *including* self-loops (as in
    scikit-learn) and labeled points hard-clamped. The per-row scale of ``W`` cancels in the row
    normalisation, so the log-domain RBF graph is used shifted by its row maximum: no row
    underflows to zero and nothing is NaN for any ``γ``. Defaults are scikit-learn's
    (``max_iter=1000``); the result equals ``LabelPropagation(...).label_distributions_``.

    ``method="solve"`` returns the harmonic solution ``F_U = (I - P_UU)^{-1} P_UL Y_L``
    (``P`` the row-normalised ``W``), differentiable; it needs every connected component of
    the graph to hold a labeled point (otherwise the system is singular).

    The graph couples every pair of points, so under ``jit`` with the point axis sharded over
    an explicit-axes mesh the points (or affinities) and the ``[N, C]`` label rows are first
    replicated (an all-gather of the point axis); the result is replicated too.

    Args:
      x_or_affinity, labels, kernel, gamma, n_neighbors, max_iter, tol, gamma_scale,
      num_classes, method, log_domain: as in :func:`label_spreading` (``log_domain=True``
      iterates ``log F ← lognorm(logsumexp_j(log W_ij + log F_j))``).

    Returns:
      ``[N, C]`` label distributions.

    >>> import jax.numpy as jnp
    >>> x = jnp.array([[0.0], [0.1], [1.0], [1.1]])
    >>> label_propagation(x, jnp.array([0, -1, -1, 1]), gamma=10.0).argmax(axis=1)
    Array([0, 0, 1, 1], dtype=int32)
    """
    log_w, y = _graph_inputs(
        x_or_affinity,
        labels,
        kernel,
        gamma,
        gamma_scale,
        n_neighbors,
        num_classes,
        max_iter,
        method,
        log_domain,
    )
    unlabeled = ~jnp.any(y != 0, axis=1, keepdims=True)
    if log_domain:
        log_y = _safe_log(y)

        def log_step(log_f: Array) -> Array:
            return jnp.where(unlabeled, _log_normalize_rows(_log_matmul(log_w, log_f)), log_y)

        log_f = _iterate(log_step, log_y, max_iter, tol, log_domain=True)
        return _softmax_rows(log_f)
    row_max = jnp.max(log_w, axis=1, keepdims=True, initial=-jnp.inf)  # (may be empty)
    w = jnp.exp(log_w - jnp.where(jnp.isfinite(row_max), row_max, 0.0))
    if method == "solve":
        p = _normalize_rows(w)
        n = w.shape[0]
        a = jnp.eye(n, dtype=y.dtype) - jnp.where(unlabeled, p, 0)
        f = jnp.linalg.solve(a, y)
    else:
        f = _iterate(lambda f: jnp.where(unlabeled, _normalize_rows(w @ f), y), y, max_iter, tol)
    return _normalize_rows(f)


def _graph_inputs(
    x_or_affinity: ArrayLike,
    labels: ArrayLike,
    kernel: str,
    gamma: Any,
    gamma_scale: Any,
    n_neighbors: int,
    num_classes: int | None,
    max_iter: Any,
    method: str,
    log_domain: bool,
) -> tuple[Array, Array]:
    """Validate; return the log-affinity ``[N, N]`` (self-loops included) and ``Y`` ``[N, C]``."""
    if kernel not in ("rbf", "knn", "precomputed"):
        raise ValueError(f"kernel must be 'rbf', 'knn' or 'precomputed'; got {kernel!r}.")
    if method not in ("iterate", "solve"):
        raise ValueError(f"method must be 'iterate' or 'solve'; got {method!r}.")
    if log_domain and method != "iterate":
        raise ValueError("log_domain=True needs method='iterate' (the closed form is linear).")
    if isinstance(max_iter, bool) or (isinstance(max_iter, int) and max_iter < 0):
        raise ValueError(f"max_iter must be a non-negative int; got {max_iter!r}.")
    x = upcast(float_array(x_or_affinity, "x_or_affinity"))
    if x.ndim != 2:
        raise ValueError(
            f"x_or_affinity must be 2-D ([N, D] points or [N, N] affinities); got "
            f"shape {tuple(x.shape)}."
        )
    n = x.shape[0]
    y = _label_matrix(labels, n, num_classes, x.dtype)
    # The graph couples every pair of points: under explicit-axes sharding both operands are
    # replicated first (a gather of the point axis, [N, D] and [N, C]; no-op elsewhere).
    x = reshard_like(x, (None,) * x.ndim)
    y = reshard_like(y, (None,) * y.ndim)
    if kernel == "precomputed":
        if x.shape != (n, n):
            raise ValueError(f"a precomputed affinity must be square; got {tuple(x.shape)}.")
        positive = x > 0
        return jnp.where(positive, jnp.log(jnp.where(positive, x, 1)), -jnp.inf), y
    d2 = _squared_distances(x)
    if kernel == "knn":
        if not isinstance(n_neighbors, int) or not 1 <= n_neighbors <= n:
            raise ValueError(f"n_neighbors must be an int in [1, {n}]; got {n_neighbors!r}.")
        _, idx = jax.lax.top_k(-d2, n_neighbors)
        # The neighbours' one-hot rows, OR-ed over the k neighbours (no scatter).
        neighbour = jnp.any(is_label(idx, n), axis=1)
        return jnp.where(neighbour, jnp.zeros((), x.dtype), -jnp.inf), y
    if gamma_scale is not None:
        static_float(gamma_scale, "gamma_scale", low=0.0, low_open=True)
        iu = jnp.triu_indices(n, 1)
        median = jnp.median(d2[iu]) if n > 1 else jnp.ones((), x.dtype)
        gamma = gamma_scale / jnp.where(median > 0, median, 1.0)
    else:
        static_float(gamma, "gamma", low=0.0)
    return -jnp.asarray(gamma, x.dtype) * d2, y


def _label_matrix(labels: ArrayLike, n: int, num_classes: int | None, dtype: Any) -> Array:
    labels = jnp.asarray(labels)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != (n,):
            raise ValueError(
                f"integer labels must have shape ({n},), one per point; got {tuple(labels.shape)}."
            )
        if num_classes is None:
            if isinstance(labels, jax.core.Tracer):
                raise ValueError("num_classes is required when labels are traced (under jit).")
            num_classes = int(jnp.max(labels)) + 1 if n else 0
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int; got {num_classes!r}.")
        return jax.nn.one_hot(labels, num_classes, dtype=dtype)  # out of range → zero row
    if jnp.issubdtype(labels.dtype, jnp.floating):
        if labels.ndim != 2 or labels.shape[0] != n:
            raise ValueError(
                f"float labels must be rows of shape ({n}, C); got {tuple(labels.shape)}."
            )
        return labels.astype(dtype)
    raise TypeError(f"labels must be integer or float; got dtype {labels.dtype}.")


def _squared_distances(x: Array) -> Array:
    """Pairwise squared distances (centred Gram form), clipped at 0, zero diagonal."""
    x = x - jnp.mean(x, axis=0, keepdims=True)
    # On x / s (s the largest magnitude), then times s twice: points of norm 1e20 give huge
    # (or inf) distances, never inf - inf = NaN from their squared norms.
    scale = jax.lax.stop_gradient(jnp.max(jnp.abs(x), initial=0.0))
    scale = jnp.where((scale > 0) & jnp.isfinite(scale), scale, 1.0)
    u = x / scale
    sq = jnp.sum(u * u, axis=1)
    d2 = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * (u @ u.T), 0.0) * scale * scale
    return jnp.where(jnp.eye(x.shape[0], dtype=bool), 0.0, d2)


def _normalize_rows(f: Array) -> Array:
    total = jnp.sum(f, axis=1, keepdims=True)
    return f / jnp.where(total == 0, 1.0, total)


def _iterate(
    step: Callable[[Array], Array], y: Array, max_iter: Any, tol: Any, *, log_domain: bool = False
) -> Array:
    """scikit-learn's loop: stop before a step once ``Σ|F - F_prev| < tol`` (``F = exp(state)``
    in the log domain, where the state starts at ``log Y`` and "previous" at ``log 0``)."""

    def cond(state: tuple[Array, Array, Array]) -> Array:
        it, f, prev = state
        change = jnp.exp(f) - jnp.exp(prev) if log_domain else f - prev
        return (it < max_iter) & (jnp.sum(jnp.abs(change)) >= tol)

    def body(state: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
        it, f, _ = state
        return it + 1, step(f), f

    prev = jnp.full_like(y, -jnp.inf) if log_domain else jnp.zeros_like(y)
    _, f, _ = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), y, prev))
    return f


def _safe_log(y: Array) -> Array:
    positive = y > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, y, 1)), -jnp.inf)


def _log_matmul(log_a: Array, log_b: Array) -> Array:
    """``log(exp(log_a) @ exp(log_b))`` without leaving the log domain (``[N, M, C]`` work)."""
    return jax.nn.logsumexp(log_a[:, :, None] + log_b[None, :, :], axis=1)


def _log_normalize_rows(log_f: Array) -> Array:
    """Rows of ``exp(log_f)`` normalised to sum 1 (all ``-inf`` rows stay so)."""
    total = jax.nn.logsumexp(log_f, axis=1, keepdims=True)
    return log_f - jnp.where(jnp.isfinite(total), total, 0.0)


def _softmax_rows(log_f: Array) -> Array:
    return jnp.exp(_log_normalize_rows(log_f))
