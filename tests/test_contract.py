"""The contract suite: every loss × every contract argument.

Each case is a loss with all inputs but one differentiable array fixed, laid out as a
``[B, H, W]`` per-element loss (a segmentation-shaped batch), so pixel weight maps, per-example
weights and masks all broadcast against it. References are NumPy reductions of the loss's own
unweighted per-element values (whose values are checked against independent references in each
family's test module); here we check the weighting, masking and reduction rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import jaxloss as jl

B, H, W, C = 2, 3, 4, 5
SHAPE = (B, H, W)
REDUCTIONS = ("none", "sum", "mean", "weighted_mean", "sum_by_nonzero_weights")


@dataclass(frozen=True)
class Case:
    """A loss as ``fn(x, **contract_kwargs)`` with per-element loss shape ``SHAPE``."""

    name: str
    fn: Callable
    x: np.ndarray
    integer_labels: np.ndarray | None = None  # set for losses that take ignore_index
    class_weights: bool = False


def _cases() -> list[Case]:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(*SHAPE, C)).astype(np.float32) * 2
    labels = rng.integers(0, C, size=SHAPE)
    onehot = np.eye(C, dtype=np.float32)[labels]
    soft = rng.dirichlet(np.ones(C), size=SHAPE).astype(np.float32)
    binary = (rng.random(SHAPE) > 0.5).astype(np.float32)
    scores = rng.normal(size=SHAPE).astype(np.float32) * 2
    probs = rng.uniform(0.05, 0.95, size=SHAPE).astype(np.float32)
    cost = (1.0 - np.eye(C) + np.arange(C)[None, :] * 0.1).astype(np.float32)
    targets = rng.normal(size=SHAPE).astype(np.float32)
    positive = rng.uniform(0.5, 3.0, size=SHAPE).astype(np.float32)
    counts = rng.poisson(2.0, size=SHAPE).astype(np.float32)
    regression = [
        Case(name, lambda x, fn=fn, t=t, **kw: fn(x, t, **kw), x)
        for name, fn, t, x in [
            ("squared_error", jl.squared_error, targets, scores),
            ("l2_loss", jl.l2_loss, targets, scores),
            ("absolute_error", jl.absolute_error, targets, scores),
            ("huber_loss", jl.huber_loss, targets, scores),
            ("smooth_l1_loss", jl.smooth_l1_loss, targets, scores),
            ("log_cosh", jl.log_cosh, targets, scores),
            (
                "quantile_loss",
                lambda x, t, **kw: jl.quantile_loss(x, t, 0.8, **kw),
                targets,
                scores,
            ),
            ("absolute_percentage_error", jl.absolute_percentage_error, positive, scores),
            ("squared_log_error", jl.squared_log_error, positive, probs),
            ("poisson_loss", jl.poisson_loss, counts, scores),
        ]
    ]
    classification = [
        Case(
            "softmax_cross_entropy_with_integer_labels",
            lambda x, **kw: jl.softmax_cross_entropy_with_integer_labels(x, labels, **kw),
            logits,
            labels,
            True,
        ),
        Case(
            "softmax_cross_entropy_with_integer_labels+smoothing",
            lambda x, **kw: jl.softmax_cross_entropy_with_integer_labels(
                x, labels, label_smoothing=0.1, **kw
            ),
            logits,
            labels,
            True,
        ),
        Case(
            "softmax_cross_entropy",
            lambda x, **kw: jl.softmax_cross_entropy(x, soft, **kw),
            logits,
            None,
            True,
        ),
        Case(
            "safe_softmax_cross_entropy",
            lambda x, **kw: jl.safe_softmax_cross_entropy(x, onehot, **kw),
            logits,
            None,
            True,
        ),
        Case(
            "sigmoid_binary_cross_entropy",
            lambda x, **kw: jl.sigmoid_binary_cross_entropy(x, binary, **kw),
            scores,
        ),
        Case(
            "sigmoid_focal_loss",
            lambda x, **kw: jl.sigmoid_focal_loss(x, binary, alpha=0.25, **kw),
            scores,
        ),
        Case(
            "binary_cross_entropy", lambda x, **kw: jl.binary_cross_entropy(x, binary, **kw), probs
        ),
        Case(
            "categorical_cross_entropy",
            lambda x, **kw: jl.categorical_cross_entropy(x, soft, **kw),
            jax.nn.softmax(logits),
            None,
            True,
        ),
        Case(
            "softmax_focal_loss",
            lambda x, **kw: jl.softmax_focal_loss(x, labels, **kw),
            logits,
            labels,
            True,
        ),
        Case(
            "expected_cost_loss",
            lambda x, **kw: jl.expected_cost_loss(x, labels, cost, **kw),
            logits,
            labels,
            True,
        ),
        Case(
            "confusion_weighted_cross_entropy",
            lambda x, **kw: jl.confusion_weighted_cross_entropy(x, labels, cost, **kw),
            logits,
            labels,
            True,
        ),
    ]
    features = rng.normal(size=(*SHAPE, 3)).astype(np.float32)
    centroids = rng.normal(size=(C, 3)).astype(np.float32)
    clustering = [
        Case(
            "kmeans_loss",  # default reduction "sum" (the k-means objective); "none" here
            lambda x, **kw: jl.kmeans_loss(x, centroids, **{"reduction": "none", **kw}),
            features,
        ),
        Case(
            "center_loss",
            lambda x, **kw: jl.center_loss(x, labels, centroids, **kw),
            features,
            labels,
            True,
        ),
    ]
    log_q = np.asarray(jax.nn.log_softmax(logits))
    other = rng.normal(size=(*SHAPE, 3)).astype(np.float32)
    farther = rng.normal(size=(*SHAPE, 3)).astype(np.float32) * 2
    optax_superset = [
        Case("kl_divergence", lambda x, **kw: jl.kl_divergence(x, soft, **kw), log_q),
        Case(
            "kl_divergence_with_log_targets",
            lambda x, **kw: jl.kl_divergence_with_log_targets(x, np.log(soft), **kw),
            log_q,
        ),
        Case(
            "generalized_kl_divergence",
            lambda x, **kw: jl.generalized_kl_divergence(x, soft * 2, **kw),
            log_q,
        ),
        Case(
            "poly_loss_cross_entropy",
            lambda x, **kw: jl.poly_loss_cross_entropy(x, onehot, **kw),
            logits,
        ),
        Case("sparsemax_loss", lambda x, **kw: jl.sparsemax_loss(x, binary, **kw), scores),
        Case(
            "multiclass_sparsemax_loss",
            lambda x, **kw: jl.multiclass_sparsemax_loss(x, labels, **kw),
            logits,
            labels,
            True,
        ),
        Case(
            "make_fenchel_young_loss",
            lambda x, **kw: jl.make_fenchel_young_loss(jax.scipy.special.logsumexp)(x, soft, **kw),
            logits,
        ),
        Case("cosine_distance", lambda x, **kw: jl.cosine_distance(x, other, **kw), features),
        Case(
            "triplet_margin_loss",
            lambda x, **kw: jl.triplet_margin_loss(x, other, farther, **kw),
            features,
        ),
    ]
    teacher = rng.normal(size=(*SHAPE, C)).astype(np.float32)
    cosines = np.tanh(logits / 2)
    new_losses = [
        Case(
            "gaussian_nll_loss",
            lambda x, **kw: jl.gaussian_nll_loss(x, targets, positive, **kw),
            scores,
        ),
        Case(
            "binary_focal_loss",
            lambda x, **kw: jl.binary_focal_loss(x, binary, alpha=0.25, **kw),
            probs,
        ),
        Case(
            "categorical_focal_loss",
            lambda x, **kw: jl.categorical_focal_loss(x, soft, **kw),
            jax.nn.softmax(logits),
        ),
        Case(
            "generalized_cross_entropy",
            lambda x, **kw: jl.generalized_cross_entropy(x, labels, **kw),
            logits,
            labels,
            True,
        ),
        Case(
            "additive_margin_softmax_loss",
            lambda x, **kw: jl.additive_margin_softmax_loss(x, labels, scale=8.0, **kw),
            cosines,
            labels,
            True,
        ),
        Case(
            "distillation_loss",
            lambda x, **kw: jl.distillation_loss(x, teacher, 2.0, **kw),
            logits,
        ),
    ]
    return regression + classification + clustering + optax_superset + new_losses


CASES = _cases()
IDS = [c.name for c in CASES]


def _contract_inputs():
    rng = np.random.default_rng(1)
    weight_map = rng.uniform(0.0, 2.0, size=SHAPE).astype(np.float32)
    weight_map[0, 0, :2] = 0.0  # some zero weights
    where = rng.random(SHAPE) > 0.3
    return weight_map, where


def _np_reduce(per, w, m, reduction, element_weight=None):
    per, w, m = np.asarray(per, np.float64), np.asarray(w, np.float64), np.asarray(m, bool)
    total = w * (1.0 if element_weight is None else np.asarray(element_weight, np.float64))
    num = np.where(m, per * w, 0.0)
    if reduction == "none":
        return num
    if reduction == "sum":
        return num.sum()
    if reduction == "mean":  # a zero sample weight excludes the element from the count
        return num.sum() / max((m & (w != 0)).sum(), 1)
    den = np.where(m, total, 0.0)
    if reduction == "weighted_mean":
        return num.sum() / den.sum() if den.sum() else 0.0
    return num.sum() / max((den != 0).sum(), 1)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_reduction_with_weight_map_and_mask(case):
    w, m = _contract_inputs()
    per = np.asarray(case.fn(case.x))
    assert per.shape == SHAPE
    for reduction in REDUCTIONS:
        got = case.fn(case.x, weights=w, where=m, reduction=reduction)
        np.testing.assert_allclose(
            got, _np_reduce(per, w, m, reduction), rtol=2e-5, atol=1e-6, err_msg=reduction
        )
    # A per-example weight [B, 1, 1] broadcasts against the pixel losses.
    per_example = np.array([0.5, 2.0], np.float32).reshape(B, 1, 1)
    np.testing.assert_allclose(
        case.fn(case.x, weights=per_example, reduction="weighted_mean"),
        _np_reduce(per, np.broadcast_to(per_example, SHAPE), np.ones(SHAPE, bool), "weighted_mean"),
        rtol=2e-5,
    )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_unit_weights_and_all_true_where_change_nothing(case):
    for reduction in REDUCTIONS:
        plain = case.fn(case.x, reduction=reduction)
        np.testing.assert_allclose(
            case.fn(case.x, weights=np.ones(SHAPE), reduction=reduction), plain, rtol=1e-6
        )
        np.testing.assert_allclose(
            case.fn(case.x, where=np.ones(SHAPE, bool), reduction=reduction), plain, rtol=1e-6
        )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_mean_over_nothing_is_zero_with_zero_gradient(case):
    settings = [
        (exclude, reduction)
        for exclude in ("where", "weights")
        for reduction in ("sum", "mean", "weighted_mean", "sum_by_nonzero_weights")
    ]

    @jax.jit
    def values_and_grads(x):  # the eight settings in one program (one compile per case)
        out = []
        for exclude, reduction in settings:
            kwargs = (
                dict(where=jnp.zeros(SHAPE, bool))
                if exclude == "where"
                else dict(weights=jnp.zeros(SHAPE, jnp.float32))
            )
            out.append(
                jax.value_and_grad(lambda x, kw=kwargs, r=reduction: case.fn(x, reduction=r, **kw))(
                    x
                )
            )
        return out

    for setting, (value, grad) in zip(settings, values_and_grads(case.x), strict=True):
        assert float(value) == 0.0, setting
        assert np.all(np.asarray(grad) == 0.0), setting


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_excluded_elements_with_nan_inputs_contribute_exactly_zero(case):
    w, m = _contract_inputs()
    x = np.array(case.x, copy=True)
    x[~m] = np.nan
    for reduction in ("none", "mean", "weighted_mean"):
        value, grad = jax.value_and_grad(
            lambda z, reduction=reduction: jnp.sum(
                case.fn(z, where=m, weights=w, reduction=reduction)
            )
        )(x)
        assert np.isfinite(value), reduction
        grad = np.asarray(grad)
        assert np.all(np.isfinite(grad)), reduction
        assert np.all(grad[~m] == 0.0), reduction


def _mask_halves():
    """The contract mask split in two disjoint halves (a stand-in for two devices' shards)."""
    _, m = _contract_inputs()
    first = np.zeros(SHAPE, bool)
    first[0] = True  # image 0 on one "device", image 1 on the other
    return m & first, m & ~first


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_parts_of_a_split_batch_add_up_to_every_reduction(case):
    """``reduction="parts"`` over two disjoint halves, added, divides to the full reduction."""
    w, m = _contract_inputs()
    halves = _mask_halves()

    def parts_of(x, where):
        return case.fn(x, weights=w, where=where, reduction="parts")

    total = parts_of(case.x, halves[0]) + parts_of(case.x, halves[1])
    for reduction in ("sum", "mean", "weighted_mean", "sum_by_nonzero_weights"):
        full = case.fn(case.x, weights=w, where=m, reduction=reduction)
        np.testing.assert_allclose(total.value(reduction), full, rtol=2e-5, atol=1e-6)
    # The gradient: summed gradients of the totals over the summed denominator.
    grads = [jax.grad(lambda x, h=h: parts_of(x, h).total)(case.x) for h in halves]
    full_grad = jax.grad(lambda x: case.fn(x, weights=w, where=m, reduction="weighted_mean"))(
        case.x
    )
    np.testing.assert_allclose(
        total.normalize(grads[0] + grads[1], "weighted_mean"), full_grad, rtol=2e-4, atol=1e-6
    )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_axis_name_reduces_over_the_named_axis(case):
    """Each member of a ``vmap(axis_name=)`` sees one half: every result is the global one."""
    w, m = _contract_inputs()
    halves = np.stack(_mask_halves())
    for reduction in ("mean", "weighted_mean", "sum_by_nonzero_weights"):
        got = jax.vmap(
            lambda where, r=reduction: case.fn(
                case.x, weights=w, where=where, reduction=r, axis_name="devices"
            ),
            axis_name="devices",
        )(halves)
        full = case.fn(case.x, weights=w, where=m, reduction=reduction)
        np.testing.assert_allclose(got, np.stack([full, full]), rtol=2e-5, atol=1e-6)


INTEGER_CASES = [c for c in CASES if c.integer_labels is not None]


@pytest.mark.parametrize("case", INTEGER_CASES, ids=[c.name for c in INTEGER_CASES])
def test_ignore_index_acts_as_where(case):
    labels = case.integer_labels
    ignored = np.zeros(SHAPE, bool)
    ignored[0, 1] = True
    ignored[1, :, 0] = True
    relabelled = np.where(ignored, -100, labels)
    # Rebuild the loss with the relabelled targets via the case's closure: the cases close over
    # `labels`, so call the public function directly with the same remaining arguments.
    fn = {
        "softmax_cross_entropy_with_integer_labels": lambda x, y, **kw: (
            jl.softmax_cross_entropy_with_integer_labels(x, y, **kw)
        ),
        "softmax_cross_entropy_with_integer_labels+smoothing": lambda x, y, **kw: (
            jl.softmax_cross_entropy_with_integer_labels(x, y, label_smoothing=0.1, **kw)
        ),
        "softmax_focal_loss": lambda x, y, **kw: jl.softmax_focal_loss(x, y, **kw),
        "multiclass_sparsemax_loss": lambda x, y, **kw: jl.multiclass_sparsemax_loss(x, y, **kw),
        "center_loss": lambda x, y, **kw: jl.center_loss(
            x, y, np.random.default_rng(0).normal(size=(C, 3)).astype(np.float32), **kw
        ),
        "expected_cost_loss": lambda x, y, **kw: jl.expected_cost_loss(
            x, y, (1.0 - np.eye(C) + np.arange(C)[None, :] * 0.1).astype(np.float32), **kw
        ),
        "confusion_weighted_cross_entropy": lambda x, y, **kw: jl.confusion_weighted_cross_entropy(
            x, y, (1.0 - np.eye(C) + np.arange(C)[None, :] * 0.1).astype(np.float32), **kw
        ),
        "generalized_cross_entropy": lambda x, y, **kw: jl.generalized_cross_entropy(x, y, **kw),
        "additive_margin_softmax_loss": lambda x, y, **kw: jl.additive_margin_softmax_loss(
            x, y, scale=8.0, **kw
        ),
    }[case.name]
    for reduction in REDUCTIONS:
        np.testing.assert_allclose(
            fn(case.x, relabelled, ignore_index=-100, reduction=reduction),
            fn(case.x, labels, where=~ignored, reduction=reduction),
            rtol=1e-6,
            err_msg=reduction,
        )
    # Without ignore_index the same labels are out of range: NaN for those elements only.
    out = np.asarray(fn(case.x, relabelled))
    assert np.all(np.isnan(out[ignored])) and np.all(np.isfinite(out[~ignored]))


CLASS_WEIGHT_CASES = [c for c in INTEGER_CASES if "smoothing" not in c.name]


@pytest.mark.parametrize("case", CLASS_WEIGHT_CASES, ids=[c.name for c in CLASS_WEIGHT_CASES])
def test_class_weights_are_chosen_by_the_true_class(case):
    cw = np.linspace(0.5, 3.0, C).astype(np.float32)
    w, m = _contract_inputs()
    per = np.asarray(case.fn(case.x))
    element_weight = cw[case.integer_labels]
    for reduction in REDUCTIONS:
        np.testing.assert_allclose(
            case.fn(case.x, class_weights=cw, weights=w, where=m, reduction=reduction),
            _np_reduce(per * element_weight, w, m, reduction, element_weight),
            rtol=2e-5,
            atol=1e-6,
            err_msg=reduction,
        )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_jit_vmap_and_grad_compose(case):
    w, m = _contract_inputs()

    def loss(x, w, m):
        return case.fn(x, weights=w, where=m, reduction="sum")

    xs = np.stack([case.x, case.x * 0.5 + 0.01])
    ms = np.stack([m, ~m])
    # One program: jit of vmap over a stack of inputs (and masks), and jit of grad.
    stacked, grad = jax.jit(
        lambda xs, w, ms: (
            jax.vmap(loss, in_axes=(0, None, 0))(xs, w, ms),
            jax.grad(loss)(xs[0], w, ms[0]),
        )
    )(xs, w, ms)
    # ... against eager calls, one per element of the stack.
    looped = [loss(xs[i], w, ms[i]) for i in range(2)]
    np.testing.assert_allclose(stacked, looped, rtol=1e-5)
    assert grad.shape == case.x.shape and np.all(np.isfinite(grad))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_contract_argument_errors(case):
    with pytest.raises(ValueError, match="reduction must be one of 'none', 'sum', 'mean'"):
        case.fn(case.x, reduction="average")
    with pytest.raises(ValueError, match=r"weights has shape \(3,\), which does not broadcast"):
        case.fn(case.x, weights=np.ones(3))
    with pytest.raises(ValueError, match=r"where has shape \(5, 1\)"):
        case.fn(case.x, where=np.ones((5, 1), bool))


# --- jaxloss.reduce itself --------------------------------------------------------------------


@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 4), st.integers(1, 5)),
        elements=st.floats(-10, 10, width=32, allow_subnormal=False),
    ),
    st.data(),
)
def test_reduce_matches_numpy_for_every_reduction(losses, data):
    shape = losses.shape
    # XLA:CPU flushes subnormals to zero, so they are left out of the draws.
    w = data.draw(
        hnp.arrays(np.float32, shape, elements=st.floats(0, 3, width=32, allow_subnormal=False))
    )
    m = data.draw(hnp.arrays(np.bool_, shape))
    for reduction in REDUCTIONS:
        np.testing.assert_allclose(
            jl.reduce(losses, weights=w, where=m, reduction=reduction),
            _np_reduce(losses, w, m, reduction),
            rtol=1e-4,
            atol=1e-4,
        )
        np.testing.assert_allclose(
            jl.reduce(losses, weights=np.ones(shape), reduction=reduction),
            jl.reduce(losses, reduction=reduction),
            rtol=1e-6,
        )
        np.testing.assert_allclose(
            jl.reduce(losses, where=np.ones(shape, bool), reduction=reduction),
            jl.reduce(losses, reduction=reduction),
            rtol=1e-6,
        )


def test_reduce_sum_per_example_then_mean_over_batch():
    rng = np.random.default_rng(2)
    per_pixel = rng.random(SHAPE).astype(np.float32)
    weight_map = rng.random(SHAPE).astype(np.float32)
    where = np.ones(SHAPE, bool)
    where[1] = False  # the second image has no labeled pixel: left out of the batch mean
    got = jl.reduce(per_pixel, weights=weight_map, where=where, sum_axes=(1, 2), reduction="mean")
    np.testing.assert_allclose(got, (per_pixel[0] * weight_map[0]).sum(), rtol=1e-6)
    per_image = jl.reduce(per_pixel, sum_axes=(1, 2), reduction="none")
    np.testing.assert_allclose(per_image, per_pixel.sum(axis=(1, 2)), rtol=1e-6)
    # The same pattern straight from a loss: [B, H, W, C] logits → one call.
    logits = rng.normal(size=(*SHAPE, C)).astype(np.float32)
    labels = rng.integers(0, C, size=SHAPE)
    per = jl.softmax_cross_entropy_with_integer_labels(logits, labels, weights=weight_map)
    np.testing.assert_allclose(
        jl.reduce(per, sum_axes=(1, 2)), np.asarray(per).sum(axis=(1, 2)).mean(), rtol=1e-6
    )


def test_reduce_edges_and_errors():
    value, grad = jax.value_and_grad(
        lambda x: jl.reduce(x, where=jnp.zeros(3, bool), reduction="weighted_mean")
    )(jnp.array([1.0, jnp.nan, 3.0]))
    assert float(value) == 0.0 and np.all(np.asarray(grad) == 0.0)
    assert jl.reduce(jnp.array([1, 2, 3])).dtype == jnp.float32  # integer losses promoted
    with pytest.raises(ValueError, match="reduction must be one of"):
        jl.reduce(jnp.ones(3), reduction="max")
    with pytest.raises(TypeError, match="where must be a boolean mask"):
        jl.reduce(jnp.ones(3), where=jnp.ones(3))
    with pytest.raises(ValueError, match=r"sum_axes=\(2,\) is out of range"):
        jl.reduce(jnp.ones((2, 2)), sum_axes=(2,))
    # reduction is static: it works under jit as a closed-over Python string.
    f = jax.jit(
        lambda x: jl.reduce(
            x, reduction="sum_by_nonzero_weights", weights=jnp.array([0.0, 1.0, 2.0])
        )
    )
    np.testing.assert_allclose(f(jnp.array([5.0, 1.0, 1.0])), 1.5)
