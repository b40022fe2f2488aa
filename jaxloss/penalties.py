r"""Weight penalties over parameter pytrees: L1, L2 and the elastic net.

Each penalty is a scalar function of a pytree of arrays (a model's parameters), added to a
data loss. The conventions are scikit-learn's ``ElasticNet`` (and so ``Lasso`` and the ridge
part), whose objective per sample is

.. math::
    \frac{1}{2n}\lVert Xw - y\rVert_2^2
    + \alpha\,\rho\,\lVert w\rVert_1 + \frac{\alpha (1 - \rho)}{2}\,\lVert w\rVert_2^2,
    \qquad \rho = \text{l1\_ratio}

so that ``l2_penalty(params, alpha)`` is :math:`\tfrac{\alpha}{2}\lVert w\rVert_2^2`, whose
gradient ``α·w`` is PyTorch's ``weight_decay=α`` and optax's ``add_decayed_weights(α)`` for
plain SGD. Keras's ``regularizers.L2(l2)`` is ``l2·Σw²``, i.e. ``l2_penalty(params, 2·l2)``;
its ``L1(l1)`` is ``l1_penalty(params, l1)``.

``where`` leaves parameters out (biases, normalisation scales): a pytree with the structure of
``params`` (or a prefix of it) whose leaves are Python bools or boolean arrays broadcastable
to the parameter, or a function ``params -> such a pytree`` (optax's ``mask`` convention). A
left-out element contributes exactly 0 to the value and the gradient.

16-bit parameters are accumulated in float32 (the penalty is float32); float64 stays float64.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxloss._checks import Array, ArrayLike, broadcasts_to, compute_dtype, static_float

__all__ = ["l1_penalty", "l2_penalty", "elastic_net_penalty"]

PyTree = Any
Mask = PyTree | Callable[[PyTree], PyTree] | None


def l1_penalty(params: PyTree, alpha: float | ArrayLike = 1.0, *, where: Mask = None) -> Array:
    r"""The L1 (lasso) penalty ``α Σ|w|`` over every array in a pytree.

    .. math:: P(w) = \alpha \sum_i \lvert w_i \rvert

    Args:
      params: a pytree of float arrays (a dict of layers, a tuple, a single array).
      alpha: the strength ``α ≥ 0`` (scikit-learn's ``Lasso(alpha=)`` on the per-sample
        objective; Keras's ``L1(l1)``).
      where: which parameters are penalised (see the module docstring); ``None`` means all.

    Returns:
      A scalar (float32 for 16-bit parameters).

    The gradient at ``w = 0`` is 0 (the subgradient ``jnp.sign`` picks; ``jnp.abs``'s own
    derivative there is 1), so a coordinate sitting exactly at zero is not pushed off by the
    penalty.

    >>> import jax.numpy as jnp
    >>> params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array([3.0])}
    >>> l1_penalty(params, 0.5)
    Array(3., dtype=float32)
    >>> l1_penalty(params, 0.5, where={"w": True, "b": False})   # biases left out
    Array(1.5, dtype=float32)
    """
    return _penalty(params, where, "l1_penalty", alpha=alpha, l1_ratio=1.0)


def l2_penalty(params: PyTree, alpha: float | ArrayLike = 1.0, *, where: Mask = None) -> Array:
    r"""The L2 (ridge, weight-decay) penalty ``½ α Σ w²`` over every array in a pytree.

    .. math:: P(w) = \frac{\alpha}{2} \sum_i w_i^2, \qquad \nabla P = \alpha\, w

    The gradient ``α·w`` is what PyTorch's ``weight_decay=α`` adds to SGD's gradient. Keras's
    ``L2(l2)`` (``l2 Σ w²``) is ``l2_penalty(params, 2 * l2)``; scikit-learn's ``Ridge(alpha)``
    objective ``‖Xw − y‖² + α‖w‖²`` is ``2·(½‖Xw − y‖² + l2_penalty(w, alpha))``.

    Args:
      params: a pytree of float arrays.
      alpha: the strength ``α ≥ 0``.
      where: which parameters are penalised (see the module docstring); ``None`` means all.

    Returns:
      A scalar (float32 for 16-bit parameters).

    >>> import jax.numpy as jnp
    >>> l2_penalty({"w": jnp.array([1.0, -2.0]), "b": jnp.array([3.0])}, 0.1)   # 0.05·14
    Array(0.7, dtype=float32)
    """
    return _penalty(params, where, "l2_penalty", alpha=alpha, l1_ratio=0.0)


def elastic_net_penalty(
    params: PyTree,
    alpha: float | ArrayLike = 1.0,
    l1_ratio: float | ArrayLike = 0.5,
    *,
    where: Mask = None,
) -> Array:
    r"""The elastic-net penalty, scikit-learn's ``ElasticNet(alpha, l1_ratio)``.

    .. math:: P(w) = \alpha\,\rho \sum_i \lvert w_i \rvert
                   + \frac{\alpha\,(1 - \rho)}{2} \sum_i w_i^2, \qquad \rho = \text{l1\_ratio}

    ``l1_ratio=1`` is :func:`l1_penalty` and ``l1_ratio=0`` is :func:`l2_penalty`. Added to the
    per-sample squared error ``‖Xw − y‖² / (2n)`` it is scikit-learn's ``ElasticNet``
    objective (and ``Lasso``'s with ``l1_ratio=1``).

    Args:
      params: a pytree of float arrays.
      alpha: the overall strength ``α ≥ 0``.
      l1_ratio: the mix ``ρ`` in ``[0, 1]``.
      where: which parameters are penalised (see the module docstring); ``None`` means all.

    Returns:
      A scalar (float32 for 16-bit parameters).

    >>> import jax.numpy as jnp
    >>> elastic_net_penalty(jnp.array([1.0, -2.0]), alpha=1.0, l1_ratio=0.5)  # 0.5·3 + 0.25·5
    Array(2.75, dtype=float32)
    """
    static_float(l1_ratio, "l1_ratio", low=0.0, high=1.0)
    return _penalty(params, where, "elastic_net_penalty", alpha=alpha, l1_ratio=l1_ratio)


def _penalty(
    params: PyTree, where: Mask, name: str, *, alpha: float | ArrayLike, l1_ratio: Any
) -> Array:
    """``α (ρ Σ|w| + ½(1 − ρ) Σ w²)`` over the included elements of every leaf."""
    static_float(alpha, "alpha", low=0.0)
    leaves, treedef = jax.tree.flatten(params)
    for leaf in leaves:
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise TypeError(
                f"{name}: every leaf of params must be a floating-point array; got a leaf of "
                f"dtype {jnp.result_type(leaf)}."
            )
    masks = _leaf_masks(params, where, treedef, name)
    dtype = jnp.result_type(*[compute_dtype(jnp.result_type(a)) for a in leaves] or [jnp.float32])
    l1 = jnp.zeros((), dtype)
    l2 = jnp.zeros((), dtype)
    use_l1 = not (isinstance(l1_ratio, int | float) and l1_ratio == 0)
    use_l2 = not (isinstance(l1_ratio, int | float) and l1_ratio == 1)
    for leaf, mask in zip(leaves, masks, strict=True):
        if mask is False:
            continue
        w = jnp.asarray(leaf).astype(dtype)
        if mask is not True:
            w = jnp.where(jnp.broadcast_to(mask, w.shape), w, jnp.zeros((), dtype))
        if use_l1:
            # |w| as sign(w)·w: the same value, and the subgradient 0 at w = 0 (jnp.abs has 1).
            l1 = l1 + jnp.sum(jnp.sign(w) * w)
        if use_l2:
            l2 = l2 + jnp.sum(w * w)
    alpha = jnp.asarray(alpha, dtype)
    rho = jnp.asarray(l1_ratio, dtype)
    total = jnp.zeros((), dtype)
    if use_l1:
        total = total + alpha * rho * l1
    if use_l2:
        total = total + 0.5 * alpha * (1 - rho) * l2
    return total


def _leaf_masks(params: PyTree, where: Mask, treedef: Any, name: str) -> list[Any]:
    """One mask per leaf of ``params``: ``True``, ``False`` or a boolean array."""
    n = treedef.num_leaves
    if where is None:
        return [True] * n
    if callable(where):
        where = where(params)
    try:
        # ``where`` may be a prefix of ``params``: broadcast each of its leaves over the subtree.
        expanded = jax.tree.map(
            lambda m, sub: jax.tree.map(lambda _: m, sub),
            where,
            params,
            is_leaf=lambda m: isinstance(m, bool) or hasattr(m, "dtype"),
        )
    except ValueError as error:
        raise ValueError(
            f"{name}: where must have the structure of params (or a prefix of it); "
            f"params is {treedef}. ({error})"
        ) from None
    masks = jax.tree.leaves(expanded, is_leaf=lambda m: isinstance(m, bool) or hasattr(m, "dtype"))
    out = []
    for m, leaf in zip(masks, jax.tree.leaves(params), strict=True):
        if isinstance(m, bool):
            out.append(m)
            continue
        m = jnp.asarray(m)
        if m.dtype != jnp.bool_:
            raise TypeError(f"{name}: where's leaves must be booleans; got dtype {m.dtype}.")
        if not broadcasts_to(m.shape, jnp.shape(leaf)):
            raise ValueError(
                f"{name}: a where leaf of shape {m.shape} does not broadcast to its parameter of "
                f"shape {jnp.shape(leaf)}."
            )
        out.append(m)
    return out
