"""Cross-entropy cores, with schedules for XLA:CPU (private; used by the classification modules).

Three ``custom_jvp`` functions compute the stable ``m + log Σ exp(x - m)`` family with ``m`` the
row maximum under ``stop_gradient``, with the values and gradients of the plain formulas:

* :func:`logsumexp_last` — log-sum-exp over the last axis, optionally with a row mask that
  zeroes excluded rows' gradients (integer-label cross-entropy on float32/64 logits, and every
  unmasked ``logsumexp_classes`` in ``_class_axis``);
* :func:`masked_label_cross_entropy` — probability-label cross-entropy with class weights and
  label smoothing expanded analytically, excluded rows masked;
* :func:`integer_label_cross_entropy` — integer-label cross-entropy on 16-bit logits, upcast
  inside each pass, gradient written once in the logits' dtype.

What makes them fast on XLA:CPU (jaxlib 0.10; numbers in ``bench/``):

* **Forward only**: the sum of ``exp(x - m)`` over a long row is taken in chunks of a few
  thousand classes with an ``optimization_barrier`` between the per-chunk sums and their
  total. Without it XLA:CPU hands the whole ``sum(exp(x - m))`` to one YNNPACK fusion, which
  over rows of ~100K classes allocates a fresh scratch buffer per call (thousands of page
  faults) and runs ~1.5× slower; short rows are left alone. On short rows (≤ ``CHUNK_ABOVE``)
  the probability-label loss is instead one expression, ``Σ w ỹ (lse - x)``, which XLA:CPU
  fuses with the row max and the sum of exponentials into a single kernel, as it does optax's.
* **Rows past** ``SPLIT_ABOVE`` (64K classes): every row sum whose operand is an elementwise
  expression (``Σ y (m - x)``) is chunked the same way (:func:`_row_sum`); unchunked it ran
  ~4× slower at 128K classes. Plain sums (``Σ y``) and the max are fast at any length.
* **Labels read as few times as possible**: the labeled-row test is ``Σ y ≠ 0``, the same sum
  the loss needs; with class weights ``Σ w y`` and ``Σ y`` come from one matrix product
  (:func:`label_sums`), and the row sums that multiply by ``w`` get their own copy of it, so
  that no ``[..., C]`` broadcast of ``w`` is materialised.
* **Differentiated**: the rules compute ``e = exp(x - m)`` once and keep it; under reverse mode
  the gradient is written in place over ``e``: one exponential per element, which on CPU is
  cheaper than recomputing ``exp`` in the backward pass (the two-pass schedule moves 16 bytes
  per element instead of 24 but measured 0.6–0.8× as fast here).
* **No sanitised copies**: XLA:CPU materialises any ``where`` (and any broadcast shared by two
  reductions) that feeds a YNNPACK reduction, so excluded rows are handled by masking the
  *tangents* (selects on the gradients, fused into the pass that writes them) and row scalars,
  never by ``where(mask, x, 0)`` over the logits.

**Backends, shards and symbolic shapes.** The CPU-tuned pieces (the chunked row sums, the
split long-row probability forward, the gathered label pick of :func:`~jaxloss._checks.pick_label`)
are chosen with :func:`jax.lax.platform_dependent`: CUDA, ROCm and TPU get the plain
formulation (plain row sums, ``Σ w ỹ (lse - x)`` in one expression, the label picked by an iota
compare), which their compilers fuse at any row length. The chunk counts are multiples of
:data:`CHUNK_ALIGN` (16), so the reshape ``[..., C] → [..., n, C/n]`` lines up with a class
axis sharded 1, 2, 4, 8 or 16 ways and nothing moves between devices (under explicit axes the
count is also a multiple of the actual shard count, else the sum is plain). A symbolic class
dimension (``jax.export``) is never compared in Python: it gets the plain forms.

A fourth, :func:`sigmoid_terms`, gives the binary cross-entropies (sigmoid BCE, sigmoid focal)
``softplus(±x)`` and ``sigmoid(±x)`` from one ``exp(-|x|)`` and one ``log1p``, with analytic
tangents: ``jax.nn.log_sigmoid(x)`` and ``jax.nn.log_sigmoid(-x)`` (optax's formulation) take
two of each, and their autodiff gradients more; value+grad of the BCE measured ~1.6× faster, and
the focal loss ~4× with an integer ``γ`` (``bench/``).

Forward-mode differentiation (``jax.jvp``, ``jax.jacfwd``) works, as before, since these are
``custom_jvp``; so do ``vmap``, ``jit``, ``checkpoint`` and higher-order derivatives (the
tangent rules are ordinary JAX code).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxloss._checks import Array, compute_dtype, explicit_spec, is_label, pick_label

__all__: list[str] = []

#: Rows longer than this have their sum of exponentials taken in chunks (forward-only path).
CHUNK_ABOVE = 8192
#: Rows longer than this have their other elementwise-fed row sums taken in chunks.
SPLIT_ABOVE = 65536
#: Preferred chunk length (classes) and the range of acceptable chunk lengths.
CHUNK, CHUNK_MIN, CHUNK_MAX = 4096, 1024, 8192
#: Chunk counts are multiples of this, so that the chunk axis splits evenly over the shards of
#: a class axis sharded 1, 2, 4, 8 or 16 ways (see :func:`_chunk_count`).
CHUNK_ALIGN = 16


def _row_max(x: Array) -> Array:
    """The row maximum, clipped to the finite range, without gradient.

    Clipping (not ``where(isfinite(m), m, 0)``) keeps the shift a max/min that XLA:CPU fuses
    into the YNNPACK reductions that use it (a select there makes it materialise the broadcast
    shift as a full ``[..., C]`` array). For an all ``-inf`` row the shift is the lowest finite
    number, ``x - m`` is still ``-inf`` and the log-sum-exp ``-inf``; for a row with ``+inf`` it
    is ``+inf``; NaN propagates: the results of the unclipped formula.
    """
    info = jnp.finfo(x.dtype)
    m = jnp.clip(jnp.max(x, axis=-1), info.min, info.max)
    return jax.lax.stop_gradient(m)


def _class_shards(x: Array) -> int:
    """How many shards the last axis of ``x`` has in its type (explicit axes; else 1).

    Under auto sharding (and inside ``shard_map``, where ``x`` is the local block) the type
    carries no sharding and this is 1; the chunk counts are then aligned for the common shard
    counts instead (:data:`CHUNK_ALIGN`).
    """
    names = explicit_spec(x)[-1]
    if names is None:
        return 1
    mesh = jax.typeof(x).sharding.mesh
    return math.prod(mesh.shape[name] for name in (names if isinstance(names, tuple) else (names,)))


def _chunk_count(x: Array, above: int) -> int | None:
    """The number of chunks to cut the rows of ``x`` into, or ``None`` for a plain sum.

    ``None`` for rows of ``above`` classes or fewer, for a symbolic class dimension (no Python
    comparison is made on it), and when no multiple of :data:`CHUNK_ALIGN` divides the row into
    chunks of ``CHUNK_MIN`` … ``CHUNK_MAX`` classes. Otherwise the count whose chunk length is
    closest to ``CHUNK``. A multiple of ``CHUNK_ALIGN`` chunks lines up with 1, 2, 4, 8 or 16
    shards of a sharded class axis: each device reshapes its own classes, no data moves. Under
    an explicit-axes mesh the count must also be a multiple of the actual number of shards.
    """
    v = x.shape[-1]
    if not isinstance(v, int) or v <= above:
        return None
    shards = _class_shards(x)
    counts = [
        n
        for n in range(CHUNK_ALIGN, v // CHUNK_MIN + 1, CHUNK_ALIGN)
        if v % n == 0 and CHUNK_MIN <= v // n <= CHUNK_MAX and n % shards == 0
    ]
    return min(counts, key=lambda n: abs(v // n - CHUNK)) if counts else None


def _is_long(x: Array, above: int) -> bool:
    """Whether the rows of ``x`` are statically longer than ``above`` (never for symbolic)."""
    v = x.shape[-1]
    return isinstance(v, int) and v > above


def _row_sum(fn: Callable[..., Array], *arrays: Array, above: int = SPLIT_ABOVE) -> Array:
    """``Σ_c fn(*arrays)_c`` over the last axis; on CPU chunked over rows longer than ``above``.

    ``arrays[0]`` is ``[..., C]``; the others are ``[..., C]``, ``[..., 1]`` (a row scalar) or
    ``[C]`` (class weights); ``fn`` is elementwise. Over long rows XLA:CPU runs a reduction whose
    operand is an elementwise expression ~4× slower than the same bytes in short rows (a plain
    ``Σ y`` is not affected): there the rows are cut into ``n`` chunks (:func:`_chunk_count`),
    summed per chunk, and the partial sums added after an ``optimization_barrier`` that keeps
    XLA from merging the two reductions back into one. That schedule is chosen with
    :func:`jax.lax.platform_dependent` for CPU only; other backends (and rows that cannot be
    chunked evenly) get the plain sum, which their compilers fuse.
    """

    def plain(*a: Array) -> Array:
        return jnp.sum(fn(*a), axis=-1)

    n = _chunk_count(arrays[0], above)
    if n is None:
        return plain(*arrays)

    def chunk(a: Array) -> Array:
        if a.shape[-1] == 1:
            return a[..., None]
        return a.reshape((*a.shape[:-1], n, a.shape[-1] // n))

    def chunked(*a: Array) -> Array:
        partial = jax.lax.optimization_barrier(jnp.sum(fn(*map(chunk, a)), axis=-1))
        return jnp.sum(partial, axis=-1)

    return jax.lax.platform_dependent(*arrays, cpu=chunked, default=plain)


def _sum_exp(x: Array, m: Array) -> Array:
    """``Σ_c exp(x_c - m)`` over the last axis, chunked over long rows (see module docstring)."""
    return _row_sum(lambda x, m: jnp.exp(x - m), x, m[..., None], above=CHUNK_ABOVE)


def logsumexp_last(x: Array, mask: Array | None = None) -> Array:
    """``log Σ_c exp(x_c)`` over the last axis, stable; ``-inf`` for an all ``-inf`` row.

    ``mask`` (shape ``x.shape[:-1]``, boolean), when given, marks the rows whose gradient may
    be nonzero: the gradient of an excluded row is exactly 0 even if its logits are NaN or inf
    (its value is whatever the formula gives; the caller masks values). This replaces a
    sanitised copy ``where(mask, x, 0)`` of the logits, which XLA:CPU materialises.
    """
    m = _row_max(x)
    if mask is None:
        mask = jnp.ones(x.shape[:-1], jnp.bool_)
    return m + _log_sum_exp_from(x, m, mask)


@jax.custom_jvp
def _log_sum_exp_from(x: Array, m: Array, mask: Array) -> Array:
    return jnp.log(_sum_exp(x, m))


@_log_sum_exp_from.defjvp
def _log_sum_exp_from_jvp(
    primals: tuple[Array, ...], tangents: tuple[Array, ...]
) -> tuple[Array, Array]:
    # ``m`` is a stop_gradient'ed row maximum and ``mask`` boolean: no tangents of their own.
    # The mask acts on the tangent, so under reverse mode it is a select on the gradient.
    (x, m, mask), (dx, _, _) = primals, tangents
    e = jnp.exp(x - m[..., None])
    s = jnp.sum(e, axis=-1)
    dx = jnp.where(mask[..., None], dx, jnp.zeros((), dx.dtype))
    return jnp.log(s), jnp.sum(e * dx, axis=-1) / s


def masked_label_cross_entropy(
    x: Array,
    y: Array,
    mask: Array,
    *,
    class_weights: Array | None = None,
    scale: Array | float = 1.0,
    shift: Array | float = 0.0,
) -> Array:
    r"""Per-row ``-Σ_c w_c ỹ_c log softmax(x)_c`` with ``ỹ = scale·y + shift``; 0 where ``~mask``.

    The probability-label cross-entropy without class masks (class weights ``w``, label
    smoothing as ``scale = 1 - ε``, ``shift = ε / C``) in one fused formulation,
    ``log_s · Σ w ỹ + Σ w ỹ (m - x)`` with ``m`` the row maximum and ``log_s = log Σ exp(x - m)``,
    the smoothed and weighted labels expanded analytically so that no ``[..., C]`` array other
    than the kept exponentials is materialised (XLA:CPU copies any shared elementwise product
    such as ``y · w`` that feeds several reductions). Excluded rows need no sanitised copy of
    ``x`` or ``y``: their values are replaced by 0 and their tangents masked, so NaN or inf
    logits or labels there reach neither the value nor any gradient. Included rows behave as
    the log-softmax formula (a ``-inf`` logit with label 0 gives NaN, as in optax).
    Gradients: ``∂/∂x = Σ w ỹ · softmax(x) - w ỹ``, ``∂/∂y = -scale · w · log softmax(x)``
    (and the matching ones for ``w``, ``scale`` and ``shift``).

    Shapes: ``x`` and ``y`` are ``[..., C]``, ``mask`` is ``[...]`` (boolean), ``class_weights``
    ``[C]``, ``scale`` and ``shift`` scalars.
    """
    dtype = x.dtype
    w = jnp.ones((0,), dtype) if class_weights is None else class_weights
    # A statically absent shift (no smoothing) is a length-0 array, like absent class weights,
    # so that the Σ w·(m - x) pass it needs is not traced at all.
    absent = isinstance(shift, int | float) and shift == 0
    shift = jnp.zeros((0,), dtype) if absent else jnp.asarray(shift, dtype)
    return _masked_ce(x, y, w, jnp.asarray(scale, dtype), shift, _row_max(x), mask)


def label_sums(y: Array, w: Array) -> tuple[Array, Array]:
    """``(Σ_c y_c w_c, Σ_c y_c)`` over the last axis, in one matrix product (float32 precision).

    One pass over the labels for both (the class-weighted label mass and the plain one, which
    tells labeled rows), and no ``[..., C]`` broadcast of ``w``: XLA:CPU materialises such a
    broadcast when several row reductions share it (a write and two reads of a logits-sized
    array). ``HIGHEST`` precision keeps GPUs from rounding the operands to TF32.
    """
    both = jnp.einsum(
        "...c,ck->...k",
        y,
        jnp.stack([w, jnp.ones_like(w)], axis=-1),
        precision=jax.lax.Precision.HIGHEST,
    )
    return both[..., 0], both[..., 1]


def _label_mass(y: Array, w: Array) -> Array:
    """``Σ_c w_c y_c`` (:func:`label_sums`), or ``Σ_c y_c`` without class weights."""
    return label_sums(y, w)[0] if _present(w) else jnp.sum(y, axis=-1)


def _weighted_row_sum(fn: Callable[..., Array], w: Array, *arrays: Array) -> Array:
    """:func:`_row_sum` of ``fn(*arrays) · w``, or of ``fn(*arrays)`` without class weights.

    The row sums get a private copy of ``w``: a broadcast of ``w`` that the gradient pass also
    uses would be merged with theirs (CSE) and then materialised as ``[..., C]``.
    """
    if not _present(w):
        return _row_sum(fn, *arrays)
    return _row_sum(lambda *a: fn(*a[:-1]) * a[-1], *arrays, jax.lax.optimization_barrier(w))


def _weighted(a: Array, w: Array) -> Array:
    """``a · w`` for class weights ``w``, or ``a`` when there are none (``w`` of length 0)."""
    return a * w if _present(w) else a


def _present(w: Array) -> bool:
    """Whether class weights ``w`` are given (absent ones are a static length-0 array).

    ``!= 0`` rather than truthiness, so that a symbolic class count (≥ 1) answers ``True``.
    """
    return w.shape[0] != 0


def _ce_terms(
    x: Array, y: Array, w: Array, m: Array, log_s: Array, scale: Array, shift: Array
) -> tuple[Array, Array, Array, Array, Array]:
    """Row sums of the loss: ``(per, Σ w y, Σ w y (m-x), Σ w, Σ w (m-x))``, unmasked."""
    top = _raw_top(x)
    wy = _label_mass(y, w)
    wy_ns = _weighted_row_sum(lambda y, x, top: y * (top - x), w, y, x, top)
    wsum = jnp.sum(w) if _present(w) else jnp.asarray(x.shape[-1], x.dtype)
    if shift.ndim:  # no smoothing
        zero = jnp.zeros((), x.dtype)
        total = scale * wy
        return log_s * total + scale * wy_ns, total, wy_ns, wsum, zero
    w_ns = _weighted_row_sum(lambda x, top: top - x, w, x, top)
    total = scale * wy + shift * wsum
    per = log_s * total + scale * wy_ns + shift * w_ns
    return per, total, wy_ns, wsum, w_ns


@jax.custom_jvp
def _masked_ce(
    x: Array, y: Array, w: Array, scale: Array, shift: Array, m: Array, mask: Array
) -> Array:
    if _is_long(x, CHUNK_ABOVE):
        # Long rows on CPU: the split form, its row sums chunked (see the module docstring).
        per = jax.lax.platform_dependent(
            x, y, w, scale, shift, m, cpu=_split_ce, default=_one_expression_ce
        )
    else:
        per = _one_expression_ce(x, y, w, scale, shift, m)
    return jnp.where(mask, per, jnp.zeros((), per.dtype))


def _one_expression_ce(x: Array, y: Array, w: Array, scale: Array, shift: Array, m: Array) -> Array:
    """``Σ w ỹ (lse - x)`` in one expression: the formulation every compiler fuses.

    XLA:CPU fuses it with the row max and the sum of exponentials into a single kernel over a
    short row (as it does optax's ``-Σ y log_softmax(x)``); GPU and TPU compilers at any row
    length. The raw row maximum (not ``m``, which is clipped) keeps the max inside that kernel;
    it differs from ``m`` only in rows with infinite logits, whose loss is NaN either way.
    """
    del m
    top = _raw_top(x)
    lse = top + jnp.log(jnp.sum(jnp.exp(x - top), axis=-1, keepdims=True))
    smoothed = scale * y if shift.ndim else scale * y + shift
    return jnp.sum(_weighted(smoothed, w) * (lse - x), axis=-1)


def _split_ce(x: Array, y: Array, w: Array, scale: Array, shift: Array, m: Array) -> Array:
    """``log_s · Σ w ỹ + Σ w ỹ (m - x)`` with chunked row sums: XLA:CPU over long rows."""
    log_s = jnp.log(_sum_exp(x, m))
    return _ce_terms(x, y, w, m, log_s, scale, shift)[0]


def _raw_top(x: Array) -> Array:
    """The raw (unclipped) row maximum without gradient, ``[..., 1]``.

    Non-finite maxima only occur in rows whose loss is NaN anyway (all ``-inf``, or ``+inf``
    present: the log-softmax is NaN there too). Using the raw maximum keeps the operands of the
    reductions that use it a plain reduction result, which XLA:CPU fuses (the clipped ``m`` of
    :func:`_row_max` is a separate kernel).
    """
    return jax.lax.stop_gradient(jnp.max(x, axis=-1, keepdims=True))


def _neg_shifted(x: Array) -> Array:
    """``max(x) - x`` with the raw row maximum; ``m - x`` rather than ``x - m`` so that it is
    not shared with (and materialised for) the exponential pass."""
    return _raw_top(x) - x


@_masked_ce.defjvp
def _masked_ce_jvp(primals: tuple[Array, ...], tangents: tuple[Array, ...]) -> tuple[Array, Array]:
    # ``m`` is a stop_gradient'ed row maximum and ``mask`` is boolean: no tangents of their own.
    # Masks act on row scalars and on the tangents only (``where`` inside a reduction makes
    # XLA:CPU materialise a masked copy); under reverse mode the tangent masks become selects
    # on the gradients, fused into the one pass that writes them.
    (x, y, w, scale, shift, m, mask), (dx, dy, dw, dscale, dshift, _, _) = primals, tangents
    keep = mask[..., None]
    zero, one = jnp.zeros((), x.dtype), jnp.ones((), x.dtype)
    e = jnp.exp(x - m[..., None])
    s = jnp.where(mask, jnp.sum(e, axis=-1), one)
    log_s = jnp.log(s)
    per, total, wy_ns, wsum, w_ns = _ce_terms(x, y, w, m, log_s, scale, shift)
    per = jnp.where(mask, per, zero)
    total = jnp.where(mask, total, zero)
    dx, dy = jnp.where(keep, dx, zero), jnp.where(keep, dy, zero)
    # ∂/∂x: Σwỹ·softmax - wỹ;  ∂/∂y: scale·w·(log_s + m - x).
    tangent = (
        total / s * jnp.sum(e * dx, axis=-1)
        - scale * jnp.sum(_weighted(y * dx, w), axis=-1)
        - (0 if shift.ndim else shift * jnp.sum(_weighted(dx, w), axis=-1))
        + scale * jnp.sum(_weighted(dy * (log_s[..., None] + _neg_shifted(x)), w), axis=-1)
    )
    # ∂/∂scale, ∂/∂shift, ∂/∂w (row coefficients masked; computed only when differentiated).
    log_s_kept = jnp.where(mask, log_s, zero)
    wy = jnp.where(mask, _label_mass(y, w), zero)
    tangent = tangent + dscale * (log_s_kept * wy + jnp.where(mask, wy_ns, zero))
    if not shift.ndim:
        tangent = tangent + dshift * (log_s_kept * wsum + jnp.where(mask, w_ns, zero))
    if _present(w):
        smoothed_y = scale * y if shift.ndim else scale * y + shift
        smoothed = jnp.where(keep, smoothed_y * (log_s[..., None] + _neg_shifted(x)), zero)
        tangent = tangent + jnp.sum(smoothed * dw, axis=-1)
    return per, jnp.where(mask, tangent, zero)


@jax.custom_jvp
def sigmoid_terms(x: Array) -> tuple[Array, Array, Array, Array]:
    r"""``(softplus(x), softplus(-x), sigmoid(x), sigmoid(-x))``, elementwise, sharing one exp.

    With ``e = exp(-|x|)``: ``softplus(±x) = max(±x, 0) + log1p(e)``, ``sigmoid(x) = 1/(1+e)``
    for ``x ≥ 0`` and ``e/(1+e)`` below, and ``sigmoid(-x)`` the other one; no ``1 - p``
    cancellation, so ``sigmoid(-x)`` is accurate where ``sigmoid(x)`` rounds to 1. Tangents:
    ``d softplus(±x) = ±sigmoid(±x)``, ``d sigmoid(±x) = ±sigmoid(x)·sigmoid(-x)`` (also at
    ``x = 0``, where ``|x|`` has no derivative). ``x = ±inf`` gives ``softplus(±x) = inf`` and
    the limits of the others; NaN propagates.
    """
    e = jnp.exp(-jnp.abs(x))
    log1p_e = jnp.log1p(e)
    inv = 1.0 / (1.0 + e)
    nonneg = x >= 0
    p, q = jnp.where(nonneg, inv, e * inv), jnp.where(nonneg, e * inv, inv)
    zero = jnp.zeros((), x.dtype)
    return jnp.maximum(x, zero) + log1p_e, jnp.maximum(-x, zero) + log1p_e, p, q


@sigmoid_terms.defjvp
def _sigmoid_terms_jvp(
    primals: tuple[Array], tangents: tuple[Array]
) -> tuple[tuple[Array, Array, Array, Array], tuple[Array, Array, Array, Array]]:
    (x,), (dx,) = primals, tangents
    out = sigmoid_terms(x)
    p, q = out[2], out[3]
    dpq = p * q * dx
    return out, (p * dx, -q * dx, dpq, -dpq)


def integer_label_cross_entropy(logits: Array, labels: Array, mask: Array | None = None) -> Array:
    r"""Per-row ``log Σ_c exp(x_c) - x_label`` in the compute dtype; 0 gradients where ``~mask``.

    ``logits`` ``[..., C]`` in their own dtype (bf16/f16 are upcast inside each pass, never as a
    float32 copy of the whole array), ``labels`` ``[...]`` integer indices in ``[0, C)`` (the
    caller replaces invalid ones), ``mask`` ``[...]`` boolean or ``None``. Values of excluded
    rows are whatever the formula gives (the caller masks them). The gradient
    ``softmax(x) - onehot(label)`` is written in one pass, in the logits' dtype: the one-hot
    part is a compare against the class index inside that pass, not a scatter, so a 16-bit
    gradient needs no float32 intermediate of its own.
    """
    if mask is None:
        mask = jnp.ones(logits.shape[:-1], jnp.bool_)
    m = _row_max(logits).astype(compute_dtype(logits.dtype))
    return _integer_ce(logits, labels, m, mask)


@jax.custom_jvp
def _integer_ce(x: Array, labels: Array, m: Array, mask: Array) -> Array:
    ct = m.dtype
    return m + jnp.log(_sum_exp(x.astype(ct), m)) - pick_label(x.astype(ct), labels)


@_integer_ce.defjvp
def _integer_ce_jvp(primals: tuple[Array, ...], tangents: tuple[Array, ...]) -> tuple[Array, Array]:
    # ``labels`` and ``mask`` are integer/boolean and ``m`` a stop_gradient'ed maximum.
    (x, labels, m, mask), (dx, _, _, _) = primals, tangents
    ct = m.dtype
    e = jnp.exp(x.astype(ct) - m[..., None])
    s = jnp.sum(e, axis=-1)
    per = m + jnp.log(s) - pick_label(x.astype(ct), labels)
    zero = jnp.zeros((), ct)
    dx = jnp.where(mask[..., None], dx.astype(ct), zero)
    onehot = is_label(labels, x.shape[-1])
    tangent = jnp.sum(e * dx, axis=-1) / s - jnp.sum(jnp.where(onehot, dx, zero), axis=-1)
    return per, tangent
