"""Sequence losses: connectionist temporal classification (CTC).

The CTC loss is ``-log p(labels | logits)``, summed over every alignment of the label sequence
to the frames (blanks in between, repeats collapsed). The functions here take optax's padded
batch layout, ``[B, T, K]`` logits with ``[B, T]`` paddings and ``[B, N]`` labels with
``[B, N]`` paddings, and give optax's numbers, plus the jaxloss contract (``weights``,
``where``, ``reduction``) over the per-sequence loss ``[B]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    float_array,
    integer_array,
    is_label,
    pick_label,
    upcast,
    value_check,
)
from jaxloss._reduction import AxisName, Reduction, element_mask, reduce_elements, sanitize

__all__ = ["ctc_loss", "ctc_loss_with_forward_probs"]


def ctc_loss(
    logits: ArrayLike,
    logit_paddings: ArrayLike,
    labels: ArrayLike,
    label_paddings: ArrayLike,
    *,
    blank_id: int = 0,
    log_epsilon: float | ArrayLike = -1e5,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""CTC loss (Graves et al. 2006) of a padded batch: ``-log p(labels | logits)``.

    .. math:: \ell_b = -\log \sum_{\pi \in \mathcal{B}^{-1}(y_b)} \prod_{t=1}^{T_b}
              \mathrm{softmax}(x_{b,t})_{\pi_t}

    where :math:`\mathcal{B}` removes repeats then blanks. optax's ``ctc_loss``: same
    arguments, defaults and values; see :func:`ctc_loss_with_forward_probs` for the details.

    Args:
      logits: ``[B, T, K]`` per-frame logits over ``K`` classes, blank included.
      logit_paddings: ``[B, T]``, 1 for padded frames, 0 for real ones.
      labels: ``[B, N]`` integer labels (never the blank).
      label_paddings: ``[B, N]``, 1 for padded labels; right padding only.
      blank_id: the blank class.
      log_epsilon: the stand-in for ``log 0`` in the recursion (as in optax).
      weights: ``[B]`` per-sequence weights; where: ``[B]`` sequence mask; reduction: the
        contract over the per-sequence loss (``"mean"`` averages sequences; divide by label
        lengths yourself for a per-token loss).

    Returns:
      ``[B]`` losses (or a scalar when reduced), float32 for 16-bit logits.

    Edges: a sequence that cannot be aligned (more labels than frames allow) gets a loss of
    about ``-log_epsilon`` rather than ``inf``, as in optax. A label outside ``[0, K)`` within
    a sequence's label length gives NaN for that sequence (optax counts it as probability 1).

    >>> import jax.numpy as jnp
    >>> logits = jnp.zeros((1, 2, 2))                  # two frames, uniform over {blank, a}
    >>> ctc_loss(logits, jnp.zeros((1, 2)), jnp.array([[1]]), jnp.zeros((1, 1)))
    Array([0.2876821], dtype=float32)
    """
    loss, _, _ = ctc_loss_with_forward_probs(
        logits,
        logit_paddings,
        labels,
        label_paddings,
        blank_id=blank_id,
        log_epsilon=log_epsilon,
        weights=weights,
        where=where,
        reduction=reduction,
        axis_name=axis_name,
    )
    return loss


def ctc_loss_with_forward_probs(
    logits: ArrayLike,
    logit_paddings: ArrayLike,
    labels: ArrayLike,
    label_paddings: ArrayLike,
    *,
    blank_id: int = 0,
    log_epsilon: float | ArrayLike = -1e5,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> tuple[Array, Array, Array]:
    r"""CTC loss and the log forward variables of the CTC recursion.

    The forward variables split the alignment states after frame ``t`` into two kinds, for
    ``n`` labels of the sequence completed:

    .. math::
        \log\alpha_{\text{blank}}(t, n) \;(n = 0..N), \qquad
        \log\alpha_{\text{label}}(t, n) \;(n = 0..N-1)

    "blank" states have emitted the first ``n`` labels and are ready for label ``n + 1``
    (the last frame was a blank, or label ``n`` was closed); "label" states are still
    emitting label ``n + 1``. One frame with log-probabilities ``ℓ_t`` (blank ``ℓ_t^∅``,
    label ``n`` ``ℓ_t^{(n)}``) updates them as

    .. math::
        \tilde\alpha_B(n{+}1) = \alpha_B(n{+}1) \oplus \bigl(\alpha_L(n) + \varepsilon\,r_n\bigr),
        \quad
        \alpha_L'(n) = \bigl(\tilde\alpha_B(n) \oplus \alpha_L(n)\bigr) + \ell_t^{(n)},
        \quad
        \alpha_B'(n{+}1) = \bigl(\tilde\alpha_B(n{+}1) + \ell_t^\varnothing\bigr) \oplus
        \bigl(\alpha_L(n) + \ell_t^\varnothing + \varepsilon(1 - r_n)\bigr)

    with ``⊕`` the log-add, ``r_n = [y_n = y_{n+1}]`` (a repeated label must pass through a
    blank) and ``ε = log_epsilon`` standing in for ``log 0``; padded frames keep the previous
    state. After the last frame the label states are closed once more, and the loss is
    ``-log α_B(T, |y|)``. This is optax's formulation, so the forward variables match optax's
    too.

    Args:
      logits, logit_paddings, labels, label_paddings, blank_id, log_epsilon: as in
        :func:`ctc_loss`.
      weights, where, reduction, axis_name: the contract, applied to the loss only.

    Returns:
      ``(loss, log_alpha_blank, log_alpha_label)``: the loss ``[B]`` (or reduced), and the
      forward variables ``[T, B, N + 1]`` and ``[T, B, N]`` (``log_alpha_blank[-1]`` already
      includes the final closing step).

    >>> import jax.numpy as jnp
    >>> loss, blank, label = ctc_loss_with_forward_probs(
    ...     jnp.zeros((1, 2, 2)), jnp.zeros((1, 2)), jnp.array([[1]]), jnp.zeros((1, 1)))
    >>> loss, blank.shape, label.shape
    (Array([0.2876821], dtype=float32), (2, 1, 2), (2, 1, 1))
    """
    x = upcast(float_array(logits, "logits"))
    if x.ndim != 3:
        raise ValueError(f"logits must have shape [B, T, K]; got shape {tuple(x.shape)}.")
    batch, frames, num_classes = x.shape
    labels = integer_array(labels, "labels")
    if labels.ndim != 2 or labels.shape[0] != batch:
        raise ValueError(
            f"labels must have shape [B, N] with B = {batch} (the logits' batch "
            f"size); got shape {tuple(labels.shape)}."
        )
    max_labels = labels.shape[1]
    logit_paddings = _paddings(logit_paddings, "logit_paddings", (batch, frames))
    label_paddings = _paddings(label_paddings, "label_paddings", (batch, max_labels))
    if not isinstance(blank_id, int) or not 0 <= blank_id < num_classes:
        raise ValueError(f"blank_id must be a Python int in [0, {num_classes}); got {blank_id!r}.")

    mask = element_mask((batch,), weights=weights, where=where, what="per-sequence loss")
    x = sanitize(x, mask)
    dtype = x.dtype
    eps = jnp.asarray(log_epsilon, dtype)
    log_probs = jax.nn.log_softmax(x, axis=-1)  # [B, T, K]

    label_lengths = max_labels - jnp.sum(label_paddings, axis=1).astype(jnp.int32)
    in_range = (labels >= 0) & (labels < num_classes)
    # Log-probability of each sequence's n-th label at each frame; out-of-range labels count
    # as log 1 (they only matter past the label length; inside it they make the loss NaN).
    # Picked with a one-hot matrix product (as optax does) and the blank with a class mask: no
    # gather or slice, so a sharded class axis moves nothing. Log-probabilities of -inf are
    # clipped to the lowest finite number first so that 0 · (-inf) cannot make a NaN.
    safe = jnp.where(in_range, labels, 0)
    finite = jnp.maximum(log_probs, jnp.finfo(dtype).min)
    picked = jnp.einsum(
        "btk,bnk->btn",
        finite,
        is_label(safe, num_classes).astype(dtype),
        precision=jax.lax.Precision.HIGHEST,
    )
    label_log_probs = jnp.where(in_range[:, None, :], picked, 0)
    is_blank = jnp.arange(num_classes) == blank_id
    blank_log_probs = jnp.sum(jnp.where(is_blank, log_probs, 0), axis=-1)  # [B, T]
    repeated = jnp.pad((labels[:, :-1] == labels[:, 1:]).astype(dtype), ((0, 0), (0, 1)))

    def close_labels(blank_state: Array, label_state: Array) -> Array:
        """``α_B(n+1) ⊕ α_L(n)``: label ``n`` may end without consuming a frame."""
        return jnp.concatenate(
            [blank_state[:, :1], jnp.logaddexp(blank_state[:, 1:], label_state)], axis=1
        )

    def step(
        carry: tuple[Array, Array], frame: tuple[Array, Array, Array]
    ) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
        alpha_blank, alpha_label = carry
        frame_label, frame_blank, padded = frame
        ready = close_labels(alpha_blank, alpha_label + eps * repeated)
        new_label = jnp.logaddexp(ready[:, :-1], alpha_label) + frame_label
        new_blank = close_labels(
            ready + frame_blank[:, None], alpha_label + frame_blank[:, None] + eps * (1 - repeated)
        )
        padded = padded[:, None]
        new_blank = jnp.where(padded, alpha_blank, new_blank)
        new_label = jnp.where(padded, alpha_label, new_label)
        return (new_blank, new_label), (new_blank, new_label)

    # Initial states shaped (and, under a mesh or shard_map, sharded) like the label rows.
    row = label_log_probs[:, 0, :]
    start_label = jnp.full_like(row, eps)
    start_blank = jnp.concatenate([jnp.zeros_like(row[:, :1]), start_label], axis=1)
    frames_first = (
        jnp.swapaxes(label_log_probs, 0, 1),
        jnp.swapaxes(blank_log_probs, 0, 1),
        jnp.swapaxes(logit_paddings != 0, 0, 1),
    )
    _, (alpha_blank, alpha_label) = jax.lax.scan(step, (start_blank, start_label), frames_first)
    final_blank = close_labels(alpha_blank[-1], alpha_label[-1])
    alpha_blank = alpha_blank.at[-1].set(final_blank)

    per = -pick_label(final_blank, label_lengths)
    positions = jnp.arange(max_labels)
    bad = jnp.any(~in_range & (positions[None, :] < label_lengths[:, None]), axis=1)
    ok = ~bad if mask is None else ~bad | ~mask
    value_check(
        ok,
        f"labels must lie in [0, {num_classes}) within each sequence's label "
        "length; got an out-of-range label.",
    )
    per = jnp.where(ok, per, jnp.nan)
    loss = reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )
    return loss, alpha_blank, alpha_label


def _paddings(paddings: ArrayLike, name: str, shape: tuple[int, ...]) -> Array:
    paddings = jnp.asarray(paddings)
    if not (jnp.issubdtype(paddings.dtype, jnp.number) or paddings.dtype == jnp.bool_):
        raise TypeError(f"{name} must be a numeric (0/1) array; got dtype {paddings.dtype}.")
    if tuple(paddings.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(paddings.shape)}; expected {shape}.")
    return paddings
