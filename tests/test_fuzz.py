"""A bounded property and fuzz run (hypothesis, derandomized in tests/conftest.py).

Random shapes, axes, values and arguments, valid and not: a call must give a result or raise a
documented ``ValueError``/``TypeError`` — never another exception. On valid calls the contract's
properties hold: shift invariance, class-permutation equivariance, ``weights=1`` ≡ none,
all-true ``where`` ≡ none, ``"sum"`` ≡ the sum of ``"none"``, ``vmap`` of the per-example loss
≡ the batched loss, and a masked element's gradient is exactly 0.

Each test draws at most ``EXAMPLES`` examples of small shapes, so the file runs in well under a
minute on one core.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxloss as jl

EXAMPLES = 8
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Losses of (logits [B, C], integer labels [B]) with the contract's keywords.
INTEGER_LABEL_LOSSES = {
    "softmax_cross_entropy_with_integer_labels": jl.softmax_cross_entropy_with_integer_labels,
    "multiclass_sparsemax_loss": jl.multiclass_sparsemax_loss,
    "multiclass_hinge_loss": jl.multiclass_hinge_loss,
    "softmax_focal_loss": jl.softmax_focal_loss,
    "generalized_cross_entropy": jl.generalized_cross_entropy,
    "multi_margin_loss": jl.multi_margin_loss,
}
# Losses of (logits [B, C], probability labels [B, C]).
PROBABILITY_LABEL_LOSSES = {
    "softmax_cross_entropy": jl.softmax_cross_entropy,
    "safe_softmax_cross_entropy": jl.safe_softmax_cross_entropy,
    "poly_loss_cross_entropy": jl.poly_loss_cross_entropy,
}
# Losses of (predictions [B, D], targets [B, D]), element-wise.
ELEMENTWISE_LOSSES = {
    "squared_error": jl.squared_error,
    "absolute_error": jl.absolute_error,
    "huber_loss": jl.huber_loss,
    "log_cosh": jl.log_cosh,
    "sigmoid_binary_cross_entropy": jl.sigmoid_binary_cross_entropy,
}
ALL_LOSSES = {**INTEGER_LABEL_LOSSES, **PROBABILITY_LABEL_LOSSES, **ELEMENTWISE_LOSSES}

REDUCTIONS = ("sum", "mean", "weighted_mean", "sum_by_nonzero_weights")


@st.composite
def batches(draw, min_classes=2):
    """A loss name and its inputs: logits/predictions, labels/targets, weights and a mask."""
    name = draw(st.sampled_from(sorted(ALL_LOSSES)))
    # Few distinct shapes, so that the compiled operations are reused across examples (the
    # values, the scale, the loss and the arguments are what varies).
    b = draw(st.sampled_from([0, 3]))
    c = draw(st.sampled_from([min_classes, 5]))
    seed = draw(st.integers(0, 2**16))
    scale = draw(st.sampled_from([0.1, 1.0, 10.0, 1e3]))
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(b, c)) * scale).astype(np.float32)
    if name in INTEGER_LABEL_LOSSES:
        y = rng.integers(0, c, size=b).astype(np.int32)
        elem_shape = (b,)
    elif name in PROBABILITY_LABEL_LOSSES:
        y = rng.dirichlet(np.ones(c), size=b).astype(np.float32).reshape(b, c)
        elem_shape = (b,)
    else:
        y = (rng.random((b, c)) > 0.5).astype(np.float32)
        elem_shape = (b, c)
    w = rng.uniform(0.1, 2.0, size=elem_shape).astype(np.float32)
    keep = rng.random(elem_shape) > 0.3
    return name, jnp.asarray(x), jnp.asarray(y), jnp.asarray(w), jnp.asarray(keep)


def _close(a, b, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


@FUZZ
@given(batches(), st.sampled_from(REDUCTIONS))
def test_weights_one_and_all_true_where_equal_none(case, reduction):
    name, x, y, _, keep = case
    fn = ALL_LOSSES[name]
    plain = fn(x, y, reduction=reduction)
    _close(fn(x, y, weights=jnp.ones(keep.shape), reduction=reduction), plain)
    _close(fn(x, y, where=jnp.ones(keep.shape, bool), reduction=reduction), plain)


@FUZZ
@given(batches())
def test_sum_is_the_sum_of_none_and_mean_divides_by_the_included(case):
    name, x, y, w, keep = case
    fn = ALL_LOSSES[name]
    per = np.asarray(fn(x, y, weights=w, where=keep, reduction="none"), np.float64)
    _close(fn(x, y, weights=w, where=keep, reduction="sum"), per.sum(), rtol=1e-4)
    count = np.sum(np.broadcast_to(np.asarray(keep), per.shape))
    want = per.sum() / count if count else 0.0
    _close(fn(x, y, weights=w, where=keep, reduction="mean"), want, rtol=1e-4)


@FUZZ
@given(batches())
def test_vmap_of_the_per_example_loss_is_the_batched_loss(case):
    name, x, y, _, _ = case
    fn = ALL_LOSSES[name]
    batched = fn(x, y)
    if x.shape[0] == 0:
        assert batched.shape[0] == 0
        return
    _close(jax.vmap(fn)(x, y), batched)


@FUZZ
@given(batches())
def test_a_masked_elements_gradient_is_exactly_zero(case):
    name, x, y, w, keep = case
    fn = ALL_LOSSES[name]
    x = x.at[0].set(jnp.nan) if x.shape[0] else x  # a NaN in a row that may be masked
    keep = keep.at[0].set(False) if x.shape[0] else keep

    def total(x):
        return fn(x, y, weights=w, where=keep, reduction="weighted_mean")

    value, g = jax.value_and_grad(total)(x)
    assert np.isfinite(value)
    g = np.asarray(g)
    assert np.isfinite(g).all()
    mask = np.asarray(keep)
    excluded = ~mask if mask.ndim == 2 else np.broadcast_to(~mask[:, None], g.shape)
    assert np.all(g[excluded] == 0)


@FUZZ
@given(batches(), st.floats(-1e3, 1e3, width=32))
def test_class_losses_are_shift_invariant(case, shift):
    name, x, y, _, _ = case
    if name in ELEMENTWISE_LOSSES:
        return
    fn = ALL_LOSSES[name]
    tol = 1e-4 * (1 + abs(shift) + float(jnp.max(jnp.abs(x), initial=0.0)))
    _close(fn(x + shift, y), fn(x, y), rtol=1e-4, atol=tol)


@FUZZ
@given(st.sampled_from([1, 4]), st.integers(0, 2**16), st.floats(-1e4, 1e4, width=32))
def test_activations_shift_invariant_and_permutation_equivariant(c, seed, shift):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(2, c)) * 3, jnp.float32)
    perm = rng.permutation(c)
    tol = 1e-5 * (1 + abs(shift))
    for fn in (jl.softmax, jl.sparsemax):
        _close(fn(x + shift), fn(x), atol=max(tol * 10, 1e-5))
        _close(fn(x[:, perm]), fn(x)[:, perm])
    _close(jl.logsumexp(x + shift), jl.logsumexp(x) + shift, atol=tol * 10)
    _close(jl.log_softmax(x[:, perm]), jl.log_softmax(x)[:, perm])


@FUZZ
@given(batches())
def test_class_permutation_equivariance(case):
    name, x, y, _, _ = case
    if name in ELEMENTWISE_LOSSES:
        return
    fn = ALL_LOSSES[name]
    c = x.shape[-1]
    perm = np.random.default_rng(c).permutation(c)
    inverse = np.argsort(perm)
    if name in INTEGER_LABEL_LOSSES:
        y_perm = jnp.asarray(inverse)[y]  # class perm[j] is now at position j
    else:
        y_perm = y[:, perm]
    _close(fn(x[:, perm], y_perm), fn(x, y), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Fuzz: random (often invalid) arguments give a result or a ValueError/TypeError.

ARG_VALUES = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.sampled_from(["none", "sum", "mean", "weighted_mean", "bogus", "", "parts"]),
    st.sampled_from([(0, 1), (-1,), (5,), (0, 0)]),
    st.floats(-2.0, 2.0, width=32),
    st.booleans(),
)


@st.composite
def shaped_array(draw):
    ndim = draw(st.integers(0, 3))
    shape = tuple(draw(st.lists(st.integers(0, 3), min_size=ndim, max_size=ndim)))
    kind = draw(st.sampled_from(["float", "int", "bool", "big"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "float":
        return rng.normal(size=shape).astype(np.float32)
    if kind == "big":
        return (rng.normal(size=shape) * 1e30).astype(np.float32)
    if kind == "int":
        return rng.integers(-2, 5, size=shape).astype(np.int32)
    return rng.random(shape) > 0.5


FUZZED = sorted(
    [
        *ALL_LOSSES,
        "softmax",
        "log_softmax",
        "sparsemax",
        "logsumexp",
        "one_hot",
        "smooth_labels",
        "soft_argmax",
        "cosine_similarity",
        "triplet_margin_loss",
        "kl_divergence",
        "dice_loss",
        "soft_dice_loss",
        "r2_score",
        "accuracy",
        "reduce",
        "class_weights",
        "lovasz_hinge_loss",
        "multiclass_sparsemax_loss",
    ]
)
KEYWORDS = ["axis", "reduction", "where", "weights", "ignore_index", "class_weights"]


@pytest.mark.parametrize("name", FUZZED)
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_random_arguments_give_a_result_or_a_documented_error(name, data):
    fn = getattr(jl, name)
    n_args = data.draw(st.integers(1, 3))
    args = [data.draw(shaped_array()) for _ in range(n_args)]
    kwargs = {}
    for key in data.draw(st.lists(st.sampled_from(KEYWORDS), max_size=2, unique=True)):
        kwargs[key] = data.draw(st.one_of(ARG_VALUES, shaped_array()))
    if name in ("one_hot",) and len(args) > 1:
        args[1] = data.draw(st.integers(-1, 5))
    try:
        out = fn(*args, **kwargs)
        jax.block_until_ready(out)
    except (ValueError, TypeError):
        pass
