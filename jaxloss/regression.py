"""Regression losses: squared, absolute, Huber, smooth L1, log-cosh, quantile, percentage, and the
Poisson and Gaussian negative log-likelihoods.

Every loss is element-wise: it returns one loss per element of ``predictions`` (with
``reduction="none"``, the default, as optax does) and takes the contract arguments ``weights``,
``where`` and ``reduction`` described in :func:`jaxloss.reduce`. ``targets`` broadcasts to the
shape of ``predictions``; where it may be omitted (``targets=None``) it means zeros, as in optax.

Gradients are finite everywhere, kinks included: the absolute error has subgradient 0 at 0,
Huber's gradient is continuous at ``|d| = delta``, and the pinball loss has subgradient 0 at 0.
16-bit inputs are accumulated in float32 and give a float32 loss; float64 stays float64.

Regression *metrics* (MSE, MAE, R², …) live in :mod:`jaxloss.metrics`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    check_broadcast,
    difference,
    float_array,
    static_float,
    upcast,
    value_check,
)
from jaxloss._reduction import AxisName, Reduction, element_mask, reduce_elements, sanitize

__all__ = [
    "squared_error",
    "l2_loss",
    "absolute_error",
    "huber_loss",
    "smooth_l1_loss",
    "log_cosh",
    "quantile_loss",
    "absolute_percentage_error",
    "squared_log_error",
    "poisson_loss",
    "gaussian_nll_loss",
]


def _residual(
    predictions: ArrayLike,
    targets: ArrayLike | None,
    weights: ArrayLike | None,
    where: ArrayLike | None,
) -> tuple[Array, Array | None]:
    """``predictions - targets`` (validated) and the included-elements mask; excluded → 0."""
    d = difference(predictions, targets)
    mask = element_mask(d.shape, weights=weights, where=where)
    return sanitize(d, mask), mask


def _abs(d: Array) -> Array:
    """``|d|`` with subgradient 0 at 0 (``jnp.abs`` differentiates to 1 there)."""
    return d * jnp.sign(d)


def _pair(
    predictions: ArrayLike, targets: ArrayLike, weights: ArrayLike | None, where: ArrayLike | None
) -> tuple[Array, Array, Array | None]:
    """Validated ``predictions`` and ``targets`` broadcast to one shape, with the mask applied."""
    p = upcast(float_array(predictions, "predictions"))
    difference(p, targets)  # the shared shape/dtype check (its result is not needed)
    # The targets themselves, not p - (p - t): that loses t entirely when |p| ≫ |t|.
    t = jnp.zeros_like(p) if targets is None else jnp.asarray(targets).astype(p.dtype)
    t = jnp.broadcast_to(t, p.shape)
    mask = element_mask(p.shape, weights=weights, where=where)
    return sanitize(p, mask), sanitize(t, mask), mask


def squared_error(
    predictions: ArrayLike,
    targets: ArrayLike | None = None,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Element-wise squared error, optax's ``squared_error``.

    .. math:: \ell = (\hat y - y)^2

    Args:
      predictions: any shape ``S``, floating point.
      targets: broadcastable to ``S`` (optax requires equal shapes; broadcasting is an
        addition); ``None`` means zeros.
      weights, where, reduction, axis_name: the contract (see :func:`jaxloss.reduce`),
        against ``S``.

    Returns:
      Shape ``S`` for ``reduction="none"``, else a scalar. ``reduction="mean"`` is the MSE.

    >>> import jax.numpy as jnp
    >>> squared_error(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.0, 0.0, 1.0]))
    Array([0., 4., 9.], dtype=float32)
    >>> squared_error(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.0, 0.0, 1.0]), reduction="mean")
    Array(4.3333335, dtype=float32)
    """
    d, mask = _residual(predictions, targets, weights, where)
    return reduce_elements(
        d**2, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def l2_loss(
    predictions: ArrayLike,
    targets: ArrayLike | None = None,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Half the squared error, optax's ``l2_loss``.

    .. math:: \ell = \tfrac12 (\hat y - y)^2

    The ½ makes the gradient the plain residual ``ŷ - y``. Arguments as :func:`squared_error`.

    >>> import jax.numpy as jnp
    >>> l2_loss(jnp.array([1.0, 3.0]), jnp.array([0.0, 0.0]))
    Array([0.5, 4.5], dtype=float32)
    """
    d, mask = _residual(predictions, targets, weights, where)
    return reduce_elements(
        0.5 * d**2, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def absolute_error(
    predictions: ArrayLike,
    targets: ArrayLike | None = None,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Element-wise absolute error (L1); ``reduction="mean"`` is the MAE.

    .. math:: \ell = |\hat y - y|

    The gradient is ``sign(ŷ - y)``, with subgradient 0 at ``ŷ = y`` (``jnp.abs`` would give 1).
    Arguments as :func:`squared_error`.

    >>> import jax, jax.numpy as jnp
    >>> absolute_error(jnp.array([1.0, -2.0, 0.5]), jnp.array([1.0, 0.0, 0.0]))
    Array([0. , 2. , 0.5], dtype=float32)
    >>> jax.grad(lambda p: absolute_error(p, 1.0, reduction="sum"))(jnp.array([1.0, 3.0]))
    Array([0., 1.], dtype=float32)
    """
    d, mask = _residual(predictions, targets, weights, where)
    return reduce_elements(
        _abs(d), mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def huber_loss(
    predictions: ArrayLike,
    targets: ArrayLike | None = None,
    *,
    delta: float | ArrayLike = 1.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Huber loss: quadratic within ``delta`` of the target, linear beyond.

    .. math::
        \ell(d) = \begin{cases} \tfrac12 d^2 & |d| \le \delta \\
                  \delta\,(|d| - \tfrac12\delta) & |d| > \delta \end{cases},
        \qquad d = \hat y - y

    The definition optax, PyTorch (``huber_loss(delta=δ)``), Keras and TensorFlow share, and
    optax's results. Gradient descent on it equals clipping the residual to ``[-δ, δ]``; the
    gradient is continuous at ``|d| = δ`` (there it is ``±δ``) and 0 at ``d = 0``.

    Args:
      predictions, targets: as :func:`squared_error`.
      delta: ``δ > 0``, a scalar or an array broadcastable to the loss.
      weights, where, reduction, axis_name: the contract.

    >>> import jax.numpy as jnp
    >>> huber_loss(jnp.array([0.5, 3.0, -1.0]))
    Array([0.125, 2.5  , 0.5  ], dtype=float32)
    >>> huber_loss(jnp.array([3.0]), jnp.array([0.0]), delta=2.0)   # 2·(3 - 1)
    Array([4.], dtype=float32)
    """
    static_float(delta, "delta", low=0.0, low_open=True)
    d, mask = _residual(predictions, targets, weights, where)
    # One select between the two branches; optax's ``0.5·min(|d|, δ)² + δ·(|d| - min(|d|, δ))``
    # is the same function with more operations in value and gradient (1.5× slower on CPU).
    abs_d = jnp.abs(d)
    per = jnp.where(abs_d <= delta, 0.5 * d * d, delta * (abs_d - 0.5 * delta))
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def smooth_l1_loss(
    predictions: ArrayLike,
    targets: ArrayLike | None = None,
    *,
    beta: float | ArrayLike = 1.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Smooth L1 loss, PyTorch's ``smooth_l1_loss(beta=β)``: Huber divided by ``β``.

    .. math::
        \ell(d) = \begin{cases} \tfrac12 d^2 / \beta & |d| < \beta \\
                  |d| - \tfrac12\beta & |d| \ge \beta \end{cases}
        \;=\; \mathrm{huber}_\beta(d) / \beta

    Its slope beyond ``β`` is always 1 (Huber's is ``δ``). ``beta=0`` is the plain absolute error
    (PyTorch's convention), also when ``beta`` is traced. Gradient as :func:`huber_loss`'s over β.

    Args:
      predictions, targets: as :func:`squared_error`.
      beta: ``β ≥ 0``, scalar or broadcastable to the loss.
      weights, where, reduction, axis_name: the contract.

    >>> import jax.numpy as jnp
    >>> smooth_l1_loss(jnp.array([0.5, 3.0]), beta=2.0)   # 0.5·0.5²/2, 3 - 1
    Array([0.0625, 2.    ], dtype=float32)
    >>> smooth_l1_loss(jnp.array([0.5, -3.0]), beta=0.0)
    Array([0.5, 3. ], dtype=float32)
    """
    static_float(beta, "beta", low=0.0)
    d, mask = _residual(predictions, targets, weights, where)
    beta = jnp.asarray(beta, d.dtype)
    abs_d = _abs(d)
    positive = beta > 0
    safe_beta = jnp.where(positive, beta, 1.0)
    quadratic = jnp.minimum(abs_d, beta)
    smooth = 0.5 * quadratic**2 / safe_beta + (abs_d - quadratic)
    per = jnp.where(positive, smooth, abs_d)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def log_cosh(
    predictions: ArrayLike,
    targets: ArrayLike | None = None,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Log-cosh loss, optax's: a twice-differentiable Huber-like loss.

    .. math:: \ell(d) = \log\cosh d = \operatorname{logaddexp}(d, -d) - \log 2

    ≈ ``d²/2`` for small ``|d|`` and ``|d| - log 2`` for large ``|d|``. Computed as a
    log-add-exp, so it is finite (and its gradient ``tanh d`` is too) for any finite ``d``,
    e.g. 1e4, where ``log(cosh(d))`` overflows.

    >>> import jax.numpy as jnp
    >>> log_cosh(jnp.array([0.0, 1.0, 1e4]))
    Array([0.000000e+00, 4.337808e-01, 9.999307e+03], dtype=float32)
    """
    d, mask = _residual(predictions, targets, weights, where)
    per = jnp.logaddexp(d, -d) - jnp.log(2.0).astype(d.dtype)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def quantile_loss(
    predictions: ArrayLike,
    targets: ArrayLike | None = None,
    quantile: float | ArrayLike = 0.5,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Pinball (quantile) loss: its minimiser is the ``quantile``-th quantile of the target.

    .. math:: \ell = \tau \max(y - \hat y, 0) + (1 - \tau) \max(\hat y - y, 0)

    Under-prediction costs ``τ`` per unit, over-prediction ``1 - τ``: ``τ = 0.9`` fits the 90th
    percentile. ``τ = 0.5`` is half the absolute error. scikit-learn's ``mean_pinball_loss``
    with ``alpha=τ`` is ``reduction="mean"``. Subgradient 0 at ``ŷ = y``.

    Args:
      predictions, targets: as :func:`squared_error`.
      quantile: ``τ`` in [0, 1], a scalar or an array broadcastable to the loss (e.g. ``[Q]``
        for predictions of shape ``[N, Q]``, one column per quantile).
      weights, where, reduction, axis_name: the contract.

    >>> import jax.numpy as jnp
    >>> quantile_loss(jnp.array([1.0, 3.0]), jnp.array([2.0, 2.0]), 0.9)
    Array([0.9       , 0.10000002], dtype=float32)
    """
    static_float(quantile, "quantile", low=0.0, high=1.0)
    d, mask = _residual(predictions, targets, weights, where)
    tau = jnp.asarray(quantile, d.dtype)
    under, over = jnp.where(d < 0, -d, 0), jnp.where(d > 0, d, 0)
    per = tau * under + (1.0 - tau) * over
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def absolute_percentage_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: float = 1e-7,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Absolute percentage error as a fraction; ``reduction="mean"`` is the MAPE.

    .. math:: \ell = \frac{|\hat y - y|}{\max(|y|, \varepsilon)}

    scikit-learn's convention (a fraction: 0.1 means 10 %; Keras's ``MAPE`` is 100 × this) with
    Keras's ``ε = 1e-7`` guarding zero targets (scikit-learn uses float64's machine epsilon): a
    zero target makes the loss ``|ŷ| / ε``, large but finite. Subgradient 0 at ``ŷ = y``.

    Args:
      predictions: any shape ``S``.
      targets: broadcastable to ``S`` (required).
      epsilon: lower bound of the denominator, > 0.
      weights, where, reduction, axis_name: the contract.

    >>> import jax.numpy as jnp
    >>> absolute_percentage_error(jnp.array([110.0, 1.0]), jnp.array([100.0, -2.0]))
    Array([0.1, 1.5], dtype=float32)
    """
    static_float(epsilon, "epsilon", low=0.0, low_open=True)
    p, t, mask = _pair(predictions, targets, weights, where)
    per = _abs(p - t) / jnp.maximum(jnp.abs(t), epsilon)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def squared_log_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Squared logarithmic error; ``reduction="mean"`` is the MSLE.

    .. math:: \ell = \bigl(\log(1 + \max(\hat y, 0)) - \log(1 + \max(y, 0))\bigr)^2

    For non-negative targets with a wide range (counts, prices): relative, not absolute, errors
    count. Negative values are clipped to 0 as Keras's ``mean_squared_logarithmic_error`` does
    (scikit-learn raises instead), so a negative prediction has zero gradient: keep predictions
    non-negative (``softplus``/``exp`` output).

    >>> import jax.numpy as jnp
    >>> squared_log_error(jnp.array([jnp.e - 1.0, 0.0]), jnp.array([0.0, -5.0]))
    Array([1., 0.], dtype=float32)
    """
    p, t, mask = _pair(predictions, targets, weights, where)
    per = (jnp.log1p(jnp.where(p > 0, p, 0)) - jnp.log1p(jnp.where(t > 0, t, 0))) ** 2
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def poisson_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    log_input: bool = True,
    full: bool = False,
    epsilon: float = 1e-8,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Poisson negative log-likelihood, PyTorch's ``poisson_nll_loss`` (same defaults).

    .. math::
        \ell = \begin{cases} e^{x} - y\,x & \texttt{log\_input=True}\ (x = \log\lambda) \\
                             x - y \log(x + \varepsilon) & \texttt{log\_input=False}\ (x = \lambda)
               \end{cases}
        \;\; \bigl[+\; y\log y - y + \tfrac12\log(2\pi y)
                   \text{ for } y > 1 \text{ if } \texttt{full}\bigr]

    The NLL of count ``y`` under a Poisson of rate ``λ``, less the constant ``log y!`` (or with
    its Stirling approximation when ``full=True``, PyTorch's convention). Note the default
    ``log_input=True``: ``predictions`` are log-rates, as from a linear layer (Keras's
    ``poisson`` takes rates: use ``log_input=False, epsilon=1e-7``).

    Args:
      predictions: log-rates (``log_input=True``) or rates ≥ 0, any shape ``S``.
      targets: counts ≥ 0, broadcastable to ``S``.
      log_input, full, epsilon: as in PyTorch; ``epsilon`` only enters ``log_input=False``.
      weights, where, reduction, axis_name: the contract.

    >>> import jax.numpy as jnp
    >>> poisson_loss(jnp.array([0.0, jnp.log(2.0)]), jnp.array([1.0, 2.0]))  # 1 - 0, 2 - 2 log 2
    Array([1.        , 0.61370564], dtype=float32)
    """
    static_float(epsilon, "epsilon", low=0.0)
    x, y, mask = _pair(predictions, targets, weights, where)
    if log_input:
        per = jnp.exp(x) - y * x
    else:
        per = x - y * jnp.log(x + epsilon)
    if full:
        big = y > 1
        safe_y = jnp.where(big, y, 1.0)
        stirling = safe_y * jnp.log(safe_y) - safe_y + 0.5 * jnp.log(2 * math.pi * safe_y)
        per = per + jnp.where(big, stirling, 0.0)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def gaussian_nll_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    variance: ArrayLike,
    *,
    full: bool = False,
    eps: float = 1e-6,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Gaussian negative log-likelihood, PyTorch's ``gaussian_nll_loss`` (same defaults).

    .. math:: \ell = \tfrac12 \Bigl(\log \max(\sigma^2, \epsilon)
              + \frac{(\hat y - y)^2}{\max(\sigma^2, \epsilon)}\Bigr)
              \;\bigl[+\; \tfrac12 \log 2\pi \text{ if } \texttt{full}\bigr]

    The NLL of ``targets`` under a normal distribution with mean ``predictions`` and variance
    ``variance`` (a heteroscedastic regression head predicts both), less the constant unless
    ``full=True``. The clamp at ``eps`` is PyTorch's: it changes the value but not the
    gradient's path, so for ``σ² < eps`` the gradient with respect to the variance is the one
    at ``eps`` (PyTorch clamps under ``no_grad``). PyTorch's ``reduction="mean"`` (its default)
    is ``reduction="mean"`` here.

    Args:
      predictions: the predicted means, any shape ``S``.
      targets: broadcastable to ``S``.
      variance: the predicted variances ``σ² ≥ 0``, broadcastable to ``S`` (one per example of
        a ``[B, D]`` output: shape ``[B, 1]``; PyTorch also accepts ``[B]`` there, which under
        NumPy broadcasting would mean one per column).
      full: add the constant ``½ log 2π``.
      eps: the variance clamp, ``> 0``.
      weights, where, reduction, axis_name: the contract.

    Edges: a negative variance gives NaN for its element (PyTorch raises);
    :func:`jaxloss.checked` raises.

    >>> import jax.numpy as jnp
    >>> gaussian_nll_loss(jnp.array([0.0, 1.0]), jnp.array([1.0, 1.0]), jnp.array([1.0, 4.0]))
    Array([0.5      , 0.6931472], dtype=float32)
    """
    static_float(eps, "eps", low=0.0, low_open=True)
    d, mask = _residual(predictions, targets, weights, where)
    var = float_array(variance, "variance")
    check_broadcast(var, "variance", d.shape, "predictions")
    var = sanitize(jnp.broadcast_to(upcast(var).astype(d.dtype), d.shape), mask, 1.0)
    nonnegative = var >= 0  # excluded elements hold 1 here
    value_check(nonnegative, "variance must be nonnegative; got a negative variance.")
    # max(σ², eps) in value, σ² in the gradient's path (PyTorch's clamp under no_grad).
    clamped = var + jax.lax.stop_gradient(jnp.maximum(var, eps) - var)
    per = 0.5 * (jnp.log(clamped) + d * d / clamped)
    if full:
        per = per + 0.5 * math.log(2 * math.pi)
    per = jnp.where(nonnegative, per, jnp.nan)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )
