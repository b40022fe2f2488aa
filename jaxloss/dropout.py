"""Dropout: inverted dropout, reusable scaled masks, and alpha dropout for SELU networks.

Inverted dropout keeps each element with probability ``keep = 1 - rate`` and scales the kept
ones by ``1 / keep``, so the expectation over masks equals the input and nothing needs
rescaling at evaluation time (``deterministic=True`` is the identity).

Randomness comes only from the ``key`` argument (a ``jax.random.key`` or a legacy
``PRNGKey``): the same key gives the same mask with and without ``jit``, and ``vmap`` over split
keys gives the masks of the individual keys. The mask is drawn with
:func:`jax.random.bernoulli`, so ``dropout(key, x, rate)`` keeps exactly the elements that
``jax.random.bernoulli(key, 1 - rate, shape)`` marks ``True`` (``shape`` with the
``broadcast_dims`` set to 1).

How the mask is drawn matters for speed. ``jax.random.bernoulli`` with the default threefry key
is lowered on XLA:CPU as a rolled loop of five rounds, each a pass over the whole array (the
threefry state is read and written five times; a [4096, 4096] mask took ~145 ms here). The
same hash written out round by round in ``jnp`` (:func:`_threefry_bits`) fuses into the one pass
that applies the mask: the same bits, the same mask, ~6× faster (``bench/``, family
``dropout``). It is used where it reproduces ``jax.random.bernoulli`` bit for bit: a threefry2x32
key, ``jax_threefry_partitionable`` on (the default), a float32 probability, fewer than 2³²
elements; anything else calls ``jax.random.bernoulli`` itself.

``rate`` may be a Python float (checked to lie in [0, 1] at trace time; ``0`` and ``1`` are
short-cut exactly) or a traced scalar (then ``rate = 1`` still gives zeros, never NaN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxloss._checks import (
    Array,
    ArrayLike,
    compute_dtype,
    float_array,
    is_python_number,
    static_float,
)

__all__ = ["dropout", "dropout_mask", "alpha_dropout"]

# SELU's constants (Klambauer et al. 2017); alpha dropout sets dropped units to -λα.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_ALPHA_PRIME = -_SELU_SCALE * _SELU_ALPHA


def dropout(
    key: Array | None,
    x: ArrayLike,
    rate: float | ArrayLike,
    *,
    deterministic: bool | ArrayLike = False,
    broadcast_dims: int | Sequence[int] = (),
) -> Array:
    r"""Inverted dropout: zero elements with probability ``rate``, scale the rest by ``1/(1-rate)``.

    .. math::
        y_i = \frac{m_i}{1 - \text{rate}}\, x_i, \qquad m_i \sim \text{Bernoulli}(1 - \text{rate}),
        \qquad \mathbb{E}[y_i] = x_i

    Args:
      key: a PRNG key; may be ``None`` when ``rate`` is a Python ``0`` or ``deterministic`` is a
        Python ``True`` (nothing random is drawn then).
      x: the activations, any shape and floating dtype (bf16 in, bf16 out).
      rate: the drop probability in [0, 1]. A Python number is range-checked (``ValueError``
        outside [0, 1]); a traced scalar is not.
      deterministic: ``True`` returns ``x`` unchanged (evaluation mode). A Python bool or a
        traced boolean scalar (then both branches are computed and selected).
      broadcast_dims: axes along which one mask value is shared (spatial / channel dropout):
        for ``x`` of shape ``[B, H, W, C]``, ``broadcast_dims=(1, 2)`` drops whole channels.

    Returns:
      An array of ``x``'s shape and dtype.

    Edges: ``rate=0`` or ``deterministic=True`` returns ``x`` itself; ``rate=1`` returns zeros
    (no NaN, no inf, zero gradient). The gradient with respect to ``x`` is the scaled mask.
    The scaled value is computed in float32 for 16-bit inputs and rounded once.

    >>> import jax, jax.numpy as jnp
    >>> x = jnp.ones((2, 4))
    >>> y = dropout(jax.random.key(0), x, 0.5)
    >>> bool(jnp.all((y == 0) | (y == 2)))              # kept elements are scaled by 1/(1-0.5)
    True
    >>> dropout(None, x, 0.5, deterministic=True) is x
    True
    >>> dropout(jax.random.key(0), x, 1.0)
    Array([[0., 0., 0., 0.],
           [0., 0., 0., 0.]], dtype=float32)
    >>> y = dropout(jax.random.key(1), jnp.ones((3, 5)), 0.5, broadcast_dims=0)  # shared mask
    >>> bool(jnp.all(y == y[0]))
    True
    """
    _check_order("dropout", key, x, rate)
    x = float_array(x, "x")
    _check_rate(rate)
    if _is_python_true(deterministic) or _is_python_number(rate, 0.0):
        return x
    if _is_python_number(rate, 1.0):
        return jnp.zeros_like(x)
    key = _check_key(key)
    keep, scale = _keep_and_scale(key, x.shape, rate, broadcast_dims)
    dtype = compute_dtype(x.dtype)
    out = jnp.where(keep, x.astype(dtype) * scale.astype(dtype), jnp.zeros((), dtype))
    out = out.astype(x.dtype)
    return _select_deterministic(deterministic, x, out)


def dropout_mask(
    key: Array,
    shape: Sequence[int],
    rate: float | ArrayLike,
    *,
    broadcast_dims: int | Sequence[int] = (),
    dtype: Any = jnp.float32,
) -> Array:
    r"""The scaled dropout mask ``m / (1 - rate)``, to reuse one mask across calls.

    .. math:: M_i = \frac{m_i}{1 - \text{rate}}, \qquad m_i \sim \text{Bernoulli}(1 - \text{rate})

    ``x * dropout_mask(key, x.shape, rate)`` equals ``dropout(key, x, rate)`` (the same key
    draws the same mask), so the mask can be applied to both branches of a network, or held
    fixed across the forward passes of one Monte-Carlo dropout sample.

    Args:
      key: a PRNG key.
      shape: the shape of the activations the mask is for.
      rate: the drop probability in [0, 1] (Python numbers are range-checked).
      broadcast_dims: axes along which one mask value is shared (see :func:`dropout`).
      dtype: the mask's floating dtype (default float32).

    Returns:
      An array of ``shape`` and ``dtype`` whose entries are ``0`` or ``1/(1 - rate)``
      (constant along ``broadcast_dims``). ``rate=0`` gives ones, ``rate=1`` zeros.

    >>> import jax
    >>> m = dropout_mask(jax.random.key(0), (2, 3), 0.75, broadcast_dims=1)
    >>> bool(((m == 0) | (m == 4)).all()), bool((m == m[:, :1]).all())
    (True, True)
    """
    _check_order("dropout_mask", key, shape, rate, second_name="shape")
    shape = tuple(int(d) for d in shape)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating dtype; got {jnp.dtype(dtype)}.")
    _check_rate(rate)
    if _is_python_number(rate, 0.0):
        return jnp.ones(shape, dtype)
    if _is_python_number(rate, 1.0):
        return jnp.zeros(shape, dtype)
    key = _check_key(key)
    keep, scale = _keep_and_scale(key, shape, rate, broadcast_dims)
    mask = jnp.where(keep, scale, jnp.zeros((), scale.dtype)).astype(dtype)
    return jnp.broadcast_to(mask, shape)


def alpha_dropout(
    key: Array | None,
    x: ArrayLike,
    rate: float | ArrayLike,
    *,
    deterministic: bool | ArrayLike = False,
) -> Array:
    r"""Alpha dropout for SELU networks: keeps zero mean and unit variance (Klambauer et al. 2017).

    Dropped units are set to SELU's negative saturation value ``α' = -λα ≈ -1.7581`` instead of
    0, then an affine map restores the input's mean and variance:

    .. math::
        y = a\,\bigl(m\,x + (1 - m)\,\alpha'\bigr) + b, \qquad
        a = \bigl(q + \alpha'^2 q (1-q)\bigr)^{-1/2}, \qquad b = -a\,(1-q)\,\alpha'

    with ``q = 1 - rate`` the keep probability. For standard-normal ``x`` the output has mean 0
    and variance 1 (PyTorch's ``nn.AlphaDropout`` and Keras's ``AlphaDropout``).

    Args:
      key: a PRNG key (may be ``None`` when ``rate`` is a Python 0 or ``deterministic`` a
        Python ``True``).
      x: activations of a SELU network, any shape and floating dtype (dtype preserved).
      rate: drop probability in [0, 1].
      deterministic: ``True`` returns ``x`` unchanged; Python bool or traced boolean.

    Returns:
      An array of ``x``'s shape and dtype.

    Edges: ``rate=0`` or ``deterministic=True`` returns ``x``; ``rate=1`` returns zeros (as
    PyTorch does; the affine map is undefined there).

    >>> import jax, jax.numpy as jnp
    >>> y = alpha_dropout(jax.random.key(0), jax.random.normal(jax.random.key(1), (100_000,)), 0.2)
    >>> round(float(y.mean()), 1), round(float(y.var()), 1)
    (0.0, 1.0)
    """
    _check_order("alpha_dropout", key, x, rate)
    x = float_array(x, "x")
    _check_rate(rate)
    if _is_python_true(deterministic) or _is_python_number(rate, 0.0):
        return x
    if _is_python_number(rate, 1.0):
        return jnp.zeros_like(x)
    key = _check_key(key)
    dtype = compute_dtype(x.dtype)
    q = 1.0 - jnp.asarray(rate, dtype)
    keep = _bernoulli(key, q, x.shape)
    alive = q > 0
    safe_q = jnp.where(alive, q, jnp.ones((), dtype))
    a = lax.rsqrt(safe_q + _ALPHA_PRIME**2 * safe_q * (1.0 - safe_q))
    b = -a * (1.0 - safe_q) * _ALPHA_PRIME
    out = a * jnp.where(keep, x.astype(dtype), jnp.asarray(_ALPHA_PRIME, dtype)) + b
    out = jnp.where(alive, out, jnp.zeros((), dtype)).astype(x.dtype)
    return _select_deterministic(deterministic, x, out)


# ---------------------------------------------------------------------------------------------
# Helpers.


def _keep_and_scale(
    key: Array,
    shape: tuple[int, ...],
    rate: float | ArrayLike,
    broadcast_dims: int | Sequence[int],
) -> tuple[Array, Array]:
    """The boolean keep mask (``1`` along ``broadcast_dims``) and the scale ``1/(1-rate)``.

    A traced ``rate = 1`` gives scale 0 (not inf), so nothing downstream can become NaN. The
    draw is piecewise constant in ``rate``; the scale carries the derivative with respect to it,
    ``∂/∂rate = m / (1 - rate)²`` per kept element (the derivative of the value for the drawn
    mask, what finite differences with the same key give).
    """
    mask_shape = _mask_shape(shape, broadcast_dims)
    keep_prob = 1.0 - jnp.asarray(rate, compute_dtype(jnp.result_type(rate)))
    keep = _bernoulli(key, keep_prob, mask_shape)
    alive = keep_prob > 0
    scale = jnp.where(alive, 1.0 / jnp.where(alive, keep_prob, 1.0), 0.0)
    return keep, scale


def _mask_shape(shape: tuple[int, ...], broadcast_dims: int | Sequence[int]) -> tuple[int, ...]:
    dims = (broadcast_dims,) if isinstance(broadcast_dims, int) else tuple(broadcast_dims)
    ndim = len(shape)
    out = list(shape)
    for d in dims:
        if not isinstance(d, int):
            raise TypeError(
                f"broadcast_dims must be an int or a sequence of ints; got {broadcast_dims!r}."
            )
        if not -ndim <= d < ndim:
            raise ValueError(
                f"broadcast_dims={broadcast_dims!r} is out of range for an array of "
                f"rank {ndim} (shape {shape})."
            )
        out[d % ndim] = 1
    return tuple(out)


def _check_rate(rate: Any) -> None:
    if isinstance(rate, jax.core.Tracer):
        # A traced rate has no value yet, but its shape is known: check that much.
        if jnp.ndim(rate) != 0:
            raise ValueError(f"rate must be a scalar; got an array of shape {tuple(rate.shape)}.")
        return
    r = np.asarray(rate) if not isinstance(rate, int | float) else rate
    if not isinstance(r, int | float) and r.ndim != 0:
        raise ValueError(f"rate must be a scalar; got an array of shape {tuple(r.shape)}.")
    static_float(rate, "rate", low=0.0, high=1.0)
    if math.isnan(float(r)):
        raise ValueError(f"rate must lie in [0.0, 1.0]; got {float(r)}.")


def _is_key(v: Any) -> bool:
    """A typed PRNG key, or a legacy raw ``uint32[..., 2]`` key."""
    dtype = getattr(v, "dtype", None)
    if dtype is None:
        return False
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
        return True
    return dtype == jnp.uint32 and tuple(getattr(v, "shape", ()))[-1:] == (2,)


def _check_order(name: str, key: Any, second: Any, rate: Any, *, second_name: str = "x") -> None:
    """``(key, x, rate)`` in that order: the usual slip (``dropout(x, rate, key)``, as in Flax's
    ``Dropout`` call or PyTorch's ``dropout(input, p)``) gets a message naming the order."""
    if key is None or _is_key(key):
        if not _is_key(rate) and not _is_key(second):
            return
    where = "rate" if _is_key(rate) else second_name if _is_key(second) else None
    got = f"a PRNG key as {where}" if where else f"key of type {type(key).__name__}"
    raise TypeError(
        f"{name} takes (key, {second_name}, rate), the PRNG key first; got {got}. "
        f"Call {name}(key, {second_name}, rate), e.g. {name}(jax.random.key(0), "
        f"{second_name}, 0.1)."
    )


def _check_key(key: Array | None) -> Array:
    if key is None:
        raise ValueError(
            "key is None, but a random mask is needed (rate > 0 and not deterministic). Pass a "
            "PRNG key, e.g. jax.random.key(0); a None key is allowed only with a Python rate of 0 "
            "or deterministic=True."
        )
    return key


def _is_python_number(x: Any, value: float) -> bool:
    return is_python_number(x) and float(x) == value


def _is_python_true(x: Any) -> bool:
    return isinstance(x, bool | np.bool_) and bool(x)


def _select_deterministic(deterministic: bool | ArrayLike, x: Array, out: Array) -> Array:
    if isinstance(deterministic, bool | np.bool_):
        return out  # a concrete False (True returned earlier)
    d = jnp.asarray(deterministic)
    if d.ndim != 0:
        raise ValueError(f"deterministic must be a scalar boolean; got shape {tuple(d.shape)}.")
    return jnp.where(d, x, out)


# ---------------------------------------------------------------------------------------------
# jax.random.bernoulli, bit for bit, in one fused pass (see the module docstring).

_THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _bernoulli(key: Array, p: Array, shape: tuple[int, ...]) -> Array:
    """``jax.random.bernoulli(key, p, shape)``, through :func:`_threefry_bits` where identical."""
    data = _threefry_key_data(key)
    size = math.prod(shape)
    if data is None or jnp.dtype(p.dtype) != jnp.float32 or not 0 < size < 2**32:
        return jax.random.bernoulli(key, p, shape)
    bits = _threefry_bits(data[0], data[1], shape)
    # jax.random.uniform's float32 construction: 23 random mantissa bits in [1, 2), minus 1.
    one_bits = np.uint32(np.float32(1.0).view(np.uint32))
    u = lax.bitcast_convert_type((bits >> np.uint32(9)) | one_bits, jnp.float32) - 1.0
    return u < p


def _threefry_key_data(key: Array) -> Array | None:
    """The two ``uint32`` words of a threefry2x32 key whose bits :func:`_threefry_bits` matches.

    ``None`` when ``jax.random.bits`` would draw differently: another PRNG implementation, or
    ``jax_threefry_partitionable`` off (its counters are laid out otherwise).
    """
    if not jax.config.jax_threefry_partitionable:  # pyright: ignore[reportAttributeAccessIssue]
        return None
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if str(jax.random.key_impl(key)) != "threefry2x32":
            return None
        data = jax.random.key_data(key)
    elif jax.config.jax_default_prng_impl == "threefry2x32" and key.shape == (2,):  # pyright: ignore[reportAttributeAccessIssue]
        data = key  # a legacy uint32 PRNGKey, read with the default implementation
    else:
        return None
    return data.astype(jnp.uint32)


def _threefry_bits(k1: Array, k2: Array, shape: tuple[int, ...]) -> Array:
    """``jax.random.bits(key, shape, uint32)`` for a threefry2x32 key ``(k1, k2)``.

    The partitionable layout: element ``i`` (row-major index, ``< 2³²``) hashes the counter pair
    ``(0, i)`` with Threefry-2x32 (20 rounds, key injections every 4) and returns the XOR of the
    two output words. Written with elementwise ``jnp`` operations so that XLA fuses the whole
    hash into its consumer.
    """
    counter = jnp.zeros(shape, jnp.uint32)
    stride = 1
    for axis in reversed(range(len(shape))):
        counter = counter + lax.broadcasted_iota(jnp.uint32, shape, axis) * np.uint32(stride)
        stride *= shape[axis]
    ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
    x0, x1 = jnp.zeros(shape, jnp.uint32) + ks[0], counter + ks[1]
    for i in range(5):
        for r in _THREEFRY_ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = ((x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))) ^ x0
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x0 ^ x1
