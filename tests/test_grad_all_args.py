"""Gradients with respect to every float argument of every public function, against float64
central differences.

The table enumerates ``jaxloss.__all__``: every public function has either gradient cases in
:data:`CASES` or an entry in :data:`NOT_DIFFERENTIABLE` saying why it has nothing to compare
(a count, an argmax, an estimator whose gradient is not its derivative by design), so a new
public function without an entry fails :func:`test_every_public_function_is_described`.

A case calls the function with the arrays given; every *floating* array among them (targets,
soft labels, weights, class weights, temperatures, margins, centroids, cost matrices, ...) is
differentiated, integer and boolean arrays and :class:`Fixed` arrays are held constant (labels,
masks, paddings, categorical ±1 targets compared by value). Non-scalar outputs are contracted
with a fixed cotangent. One jitted function (values) and one jitted gradient per case.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss as jl

from helpers import float64

B, C, D, H = 3, 4, 3, 2
rng = np.random.default_rng(0)
f64 = np.float64


def _u(lo, hi, *shape):
    return rng.uniform(lo, hi, size=shape).astype(f64)


def _n(*shape, scale=1.0):
    return (rng.normal(size=shape) * scale).astype(f64)


def scalar(v):
    return np.asarray(v, f64)


X = _n(B, C, scale=1.5)  # logits
LOG_Q = X - np.log(np.exp(X).sum(axis=-1, keepdims=True))
P = rng.dirichlet(np.ones(C), size=B).astype(f64)  # soft labels / probabilities
P0 = np.array([[0.0, 0.7, 0.3, 0.0], [0.5, 0.0, 0.0, 0.5], [0.0, 0.0, 1.0, 0.0]])  # with zeros
Y = np.array([1, 3, 0], np.int32)  # integer labels
W = _u(0.5, 2.0, B)  # per-example weights
CW = _u(0.5, 2.0, C)  # class weights
T = _n(B, C)  # regression targets
PRED = _n(B, C)
POS = _u(0.5, 2.0, B, C)  # positive values
PROB = _u(0.1, 0.9, B, C)  # elementwise probabilities
BIN = (rng.random((B, C)) > 0.5).astype(f64)
SIGNS = 2 * BIN - 1
CLASS_MASK = np.array([[True, True, False, True], [True, False, True, True], [True] * 4])
SEG_X = _n(B, H, H, C)  # [B, H, W, C] logits
SEG_Y = rng.integers(0, C, size=(B, H, H)).astype(np.int32)
SEG_P = rng.dirichlet(np.ones(C), size=(B, H, H)).astype(f64)
SEG_BIN = (rng.random((B, H, H)) > 0.5).astype(f64)
FEAT = _n(6, D)
FEAT_Y = np.array([0, 1, 2, 0, 1, 2], np.int32)
CENT = _n(C, D)
GROUP = np.array([0, 0, 1, 1, 2, 2], np.int32)


@dataclass(frozen=True)
class Fixed:
    """A float array held constant (not differentiated): a categorical target, a padding."""

    value: Any


@dataclass
class G:
    """``fn(*args, **kwargs)``; its floating arrays are the differentiated arguments."""

    fn: Any
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    rtol: float = 1e-5
    atol: float = 1e-8
    eps: float = 1e-6

    def split(self):
        """The function of the float arrays alone, and their values."""
        slots, values = [], []
        for where, items in (("a", enumerate(self.args)), ("k", self.kwargs.items())):
            for key, v in items:
                if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating):
                    slots.append((where, key))
                    values.append(v)

        def fn(*floats):
            args = [a.value if isinstance(a, Fixed) else a for a in self.args]
            kwargs = {k: v.value if isinstance(v, Fixed) else v for k, v in self.kwargs.items()}
            for (where, key), v in zip(slots, floats, strict=True):
                if where == "a":
                    args[key] = v
                else:
                    kwargs[key] = v
            return _contract(self.fn(*args, **kwargs))

        return fn, values


def _contract(out):
    """A scalar from any output: each float leaf dotted with a fixed cotangent."""
    total = jnp.zeros((), jnp.float64)
    for leaf in jax.tree.leaves(out):
        leaf = jnp.asarray(leaf)
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            continue
        cot = jnp.cos(jnp.arange(leaf.size, dtype=leaf.dtype) * 1.3 + 0.4).reshape(leaf.shape)
        total = total + jnp.sum(leaf * cot)
    return total


def _vocab_parallel(logits, labels, **kwargs):
    """``vocab_parallel_cross_entropy`` over 2 vocabulary shards of ``logits`` (a named ``vmap``
    axis stands in for the mesh axis: pmax/psum/axis_index work the same)."""
    shards = jnp.moveaxis(logits.reshape(logits.shape[0], 2, -1), 1, 0)
    per_shard = jax.vmap(
        lambda x: jl.vocab_parallel_cross_entropy(
            x, labels, axis_name="vocab", label_smoothing=0.1, reduction="mean", **kwargs
        ),
        axis_name="vocab",
    )(shards)
    return per_shard[0]


def _fy():
    return jl.make_fenchel_young_loss(jax.scipy.special.logsumexp)


mean = {"reduction": "mean"}
wmean = {"reduction": "weighted_mean"}

#: name → gradient cases. Every float array of a case is differentiated.
CASES: dict[str, list[G]] = {
    # --- reduction, activations
    "reduce": [G(jl.reduce, (PRED,), {"weights": _u(0.5, 2, B, 1), "reduction": "weighted_mean"})],
    "softmax": [
        G(jl.softmax, (X,), {"temperature": scalar(0.7)}),
        G(jl.softmax, (X, -1, CLASS_MASK)),
    ],
    "log_softmax": [G(jl.log_softmax, (X,), {"temperature": scalar(1.3)})],
    "logsumexp": [G(jl.logsumexp, (X,))],
    "sigmoid": [G(jl.sigmoid, (X,))],
    "log_sigmoid": [G(jl.log_sigmoid, (X,))],
    "sparsemax": [G(jl.sparsemax, (X,))],
    "soft_argmax": [G(jl.soft_argmax, (X, scalar(0.8)))],
    # --- cross-entropies
    "softmax_cross_entropy": [
        G(jl.softmax_cross_entropy, (X, P), {"weights": W, "class_weights": CW, **wmean}),
        G(jl.softmax_cross_entropy, (X, P), {"label_smoothing": scalar(0.1), **mean}),
        # the label gradient at a class masked by ``where`` (was NaN: 0·inf)
        G(jl.softmax_cross_entropy, (X, P, -1, CLASS_MASK)),
    ],
    "safe_softmax_cross_entropy": [
        # zero labels: the label gradient there is lse − x (optax), not 0
        G(jl.safe_softmax_cross_entropy, (X, P0)),
        G(jl.safe_softmax_cross_entropy, (X, P0, -1, CLASS_MASK), {"class_weights": CW}),
    ],
    "softmax_cross_entropy_with_integer_labels": [
        G(
            jl.softmax_cross_entropy_with_integer_labels,
            (X, Y),
            {"weights": W, "class_weights": CW, "label_smoothing": scalar(0.2), **wmean},
        ),
        G(jl.softmax_cross_entropy_with_integer_labels, (X, Y, -1, CLASS_MASK)),
    ],
    # --- large vocabularies: hidden [B, D] @ weight [D, C] (or [C, D]), fused and chunked
    "linear_softmax_cross_entropy": [
        G(
            jl.linear_softmax_cross_entropy,
            (FEAT[:B], _n(D, C), Y),
            {"bias": _n(C), "weights": W, "label_smoothing": 0.1, "z_loss": 0.01, **wmean},
        ),
        G(
            jl.linear_softmax_cross_entropy,
            (FEAT[:B], _n(C, D), Y),
            {"weight_layout": "vd", "logit_soft_cap": 2.0, "mode": "recompute", "chunk_size": 2},
        ),
    ],
    "vocab_parallel_cross_entropy": [G(_vocab_parallel, (X, Y), {"weights": W})],
    "sigmoid_binary_cross_entropy": [
        G(
            jl.sigmoid_binary_cross_entropy,
            (X, PROB),
            {"pos_weight": _u(0.5, 2, C), "weights": _u(0.5, 2, B, C), **mean},
        ),
        G(
            jl.sigmoid_binary_cross_entropy,
            (X, PROB),
            {"class_weights": _u(0.5, 2, 2), "label_smoothing": scalar(0.1), **wmean},
        ),
    ],
    "binary_cross_entropy": [
        G(
            jl.binary_cross_entropy,
            (PROB, _u(0, 1, B, C)),
            {"class_weights": _u(0.5, 2, 2), "label_smoothing": scalar(0.1), **wmean},
        )
    ],
    "categorical_cross_entropy": [
        G(
            jl.categorical_cross_entropy,
            (P, rng.dirichlet(np.ones(C), size=B)),
            {"class_weights": CW, "label_smoothing": scalar(0.1), "weights": W, **wmean},
        )
    ],
    "smooth_labels": [G(jl.smooth_labels, (P, scalar(0.2)))],
    "poly_loss_cross_entropy": [
        G(
            jl.poly_loss_cross_entropy,
            (X, P),
            {"epsilon": scalar(1.5), "weights": W, "class_weights": CW, **wmean},
        )
    ],
    "negative_log_likelihood": [
        G(
            jl.negative_log_likelihood,
            (LOG_Q, Y),
            {"weights": W, "class_weights": CW, **wmean},
        )
    ],
    # --- focal, cost-sensitive, robust, margin
    "sigmoid_focal_loss": [
        G(
            jl.sigmoid_focal_loss,
            (X, PROB),
            {"alpha": scalar(0.3), "gamma": scalar(1.5), "weights": _u(0.5, 2, B, C), **mean},
        )
    ],
    "softmax_focal_loss": [
        G(jl.softmax_focal_loss, (X, Y), {"alpha": CW, "weights": W, **mean}),
        G(jl.softmax_focal_loss, (X, P), {"class_weights": CW, **wmean}),
    ],
    "binary_focal_loss": [
        G(
            jl.binary_focal_loss,
            (PROB, _u(0, 1, B, C)),
            {"alpha": scalar(0.3), "gamma": scalar(1.5), "class_weights": _u(0.5, 2, 2)},
        )
    ],
    "categorical_focal_loss": [
        G(
            jl.categorical_focal_loss,
            (P, rng.dirichlet(np.ones(C), size=B)),
            {"alpha": CW, "gamma": scalar(1.5), "weights": W, **mean},
        )
    ],
    "expected_cost_loss": [
        G(jl.expected_cost_loss, (X, Y, _u(0, 2, C, C)), {"class_weights": CW, **wmean}),
        G(jl.expected_cost_loss, (X, P, _u(0, 2, C, C))),
    ],
    "confusion_weighted_cross_entropy": [
        G(jl.confusion_weighted_cross_entropy, (X, Y, _u(0.5, 2, C, C)), {"weights": W, **mean}),
        G(jl.confusion_weighted_cross_entropy, (X, P, _u(0.5, 2, C, C))),
    ],
    "generalized_cross_entropy": [
        G(jl.generalized_cross_entropy, (X, Y), {"q": scalar(0.6), "class_weights": CW, **wmean})
    ],
    "hinge_loss": [G(jl.hinge_loss, (PRED, SIGNS), {"weights": _u(0.5, 2, B, C), **mean})],
    "squared_hinge_loss": [G(jl.squared_hinge_loss, (PRED, SIGNS), {"margin": scalar(0.8)})],
    "binary_hinge_loss": [G(jl.binary_hinge_loss, (PRED, Fixed(BIN)), {"margin": scalar(0.7)})],
    "perceptron_loss": [G(jl.perceptron_loss, (PRED, SIGNS))],
    "multiclass_hinge_loss": [
        G(jl.multiclass_hinge_loss, (X, Y), {"weights": W, "class_weights": CW, **wmean})
    ],
    "multiclass_perceptron_loss": [
        G(jl.multiclass_perceptron_loss, (X, Y), {"class_weights": CW, **wmean})
    ],
    "multi_margin_loss": [
        G(
            jl.multi_margin_loss,
            (X, Y),
            {"margin": scalar(0.9), "p": 2, "class_weights": CW, "weights": W, **mean},
        )
    ],
    "hinge_embedding_loss": [
        G(jl.hinge_embedding_loss, (np.abs(PRED), Fixed(SIGNS)), {"margin": scalar(1.5)})
    ],
    "multilabel_margin_loss": [
        G(jl.multilabel_margin_loss, (X, BIN.astype(np.int32)), {"margin": scalar(0.8)})
    ],
    "margin_ranking_loss": [
        G(
            jl.margin_ranking_loss,
            (PRED, T, SIGNS),
            {"margin": scalar(0.3), "weights": _u(1, 2, B, C)},
        )
    ],
    "additive_margin_softmax_loss": [
        G(
            jl.additive_margin_softmax_loss,
            (np.tanh(X), Y),
            {"scale": scalar(8.0), "margin": scalar(0.2), "class_weights": CW, **wmean},
        ),
        G(
            jl.additive_margin_softmax_loss,
            (np.tanh(X), Y),
            {"kind": "cosface", "scale": scalar(8.0), "margin": scalar(0.2)},
        ),
    ],
    # --- divergences, sparse
    "kl_divergence": [
        G(jl.kl_divergence, (LOG_Q, P), {"weights": W, **wmean}),
    ],
    "kl_divergence_with_log_targets": [G(jl.kl_divergence_with_log_targets, (LOG_Q, np.log(P)))],
    "generalized_kl_divergence": [
        G(jl.generalized_kl_divergence, (np.log(POS), _u(0.5, 2, B, C)), {"weights": W, **mean})
    ],
    "convex_kl_divergence": [G(jl.convex_kl_divergence, (np.log(POS), _u(0.5, 2, B, C)))],
    "sparsemax_loss": [G(jl.sparsemax_loss, (PRED, BIN))],
    "multiclass_sparsemax_loss": [
        G(jl.multiclass_sparsemax_loss, (X, Y), {"class_weights": CW, "weights": W, **wmean})
    ],
    "make_fenchel_young_loss": [G(lambda x, y, **kw: _fy()(x, y, **kw), (X, P), {"weights": W})],
    # --- regression
    "squared_error": [G(jl.squared_error, (PRED, T), {"weights": _u(0.5, 2, B, C), **mean})],
    "l2_loss": [G(jl.l2_loss, (PRED, T))],
    "absolute_error": [G(jl.absolute_error, (PRED, T), {"weights": _u(0.5, 2, B, 1), **wmean})],
    "huber_loss": [G(jl.huber_loss, (PRED * 2, T), {"delta": scalar(0.9)})],
    "smooth_l1_loss": [G(jl.smooth_l1_loss, (PRED * 2, T), {"beta": scalar(0.9)})],
    "log_cosh": [G(jl.log_cosh, (PRED, T))],
    "quantile_loss": [G(jl.quantile_loss, (PRED, T, scalar(0.7)))],
    "absolute_percentage_error": [G(jl.absolute_percentage_error, (PRED, POS))],
    "squared_log_error": [G(jl.squared_log_error, (POS, _u(0.5, 2, B, C)))],
    "poisson_loss": [
        G(jl.poisson_loss, (PRED, POS)),
        G(jl.poisson_loss, (POS, POS * 1.3), {"log_input": False, "full": True}),
    ],
    "gaussian_nll_loss": [G(jl.gaussian_nll_loss, (PRED, T, POS), {"full": True})],
    "mean_squared_error": [G(jl.mean_squared_error, (PRED, T), {"weights": _u(0.5, 2, B, C)})],
    "root_mean_squared_error": [G(jl.root_mean_squared_error, (PRED, T))],
    "mean_absolute_error": [G(jl.mean_absolute_error, (PRED, T), {"weights": _u(0.5, 2, B, C)})],
    "mean_absolute_percentage_error": [G(jl.mean_absolute_percentage_error, (PRED, POS))],
    "r2_score": [G(jl.r2_score, (PRED, T), {"weights": _u(0.5, 2, B, C)})],
    # --- embeddings, contrastive, distillation
    "cosine_similarity": [G(jl.cosine_similarity, (PRED, T), {"epsilon": scalar(1e-3)})],
    "cosine_distance": [G(jl.cosine_distance, (PRED, T), {"weights": W, **mean})],
    "cosine_embedding_loss": [
        G(jl.cosine_embedding_loss, (PRED, T, Fixed(SIGNS[:, 0])), {"margin": scalar(-0.5)})
    ],
    "triplet_margin_loss": [
        G(jl.triplet_margin_loss, (PRED, T, _n(B, C)), {"margin": scalar(3.0), "eps": scalar(1e-3)})
    ],
    "ntxent": [G(jl.ntxent, (FEAT, GROUP, scalar(0.5)))],
    "circle_loss": [
        G(
            jl.circle_loss,
            (FEAT, GROUP),
            {"gamma": scalar(4.0), "margin": scalar(0.3), "stop_gradient_weights": False},
        )
    ],
    "supervised_contrastive_loss": [G(jl.supervised_contrastive_loss, (FEAT, GROUP, scalar(0.5)))],
    "clip_loss": [G(jl.clip_loss, (FEAT, _n(6, D), scalar(0.5)), {"weights": _u(0.5, 2, 6)})],
    "distillation_loss": [
        G(jl.distillation_loss, (X, _n(B, C), scalar(2.0)), {"stop_gradient_teacher": False})
    ],
    # --- segmentation
    "dice_loss": [
        G(
            jl.dice_loss,
            (SEG_X, SEG_P),
            {"class_weights": CW, "smooth": scalar(0.5), "alpha": scalar(0.3), "beta": scalar(0.6)},
        ),
        G(
            jl.dice_loss,
            (SEG_P, np.eye(C)[SEG_Y]),
            {"apply_softmax": False, "weights": _u(0.5, 2, B, H, H)},
        ),
    ],
    "binary_dice_loss": [G(jl.binary_dice_loss, (SEG_X[..., 0], SEG_BIN), {"smooth": scalar(0.5)})],
    "multiclass_generalized_dice_loss": [
        G(jl.multiclass_generalized_dice_loss, (SEG_X, SEG_P), {"smooth": scalar(0.5)})
    ],
    "soft_dice_loss": [
        G(
            jl.soft_dice_loss,
            (SEG_X, SEG_Y),
            {"smooth": scalar(0.1), "weights": _u(0.5, 2, B, H, H)},
        ),
        G(jl.soft_dice_loss, (SEG_X, SEG_P), {"soft_label": True, "squared_denominator": True}),
    ],
    "tversky_loss": [
        G(
            jl.tversky_loss,
            (SEG_X, SEG_Y),
            {"alpha": scalar(0.3), "beta": scalar(0.7), "smooth": scalar(0.1)},
        )
    ],
    "focal_tversky_loss": [
        G(jl.focal_tversky_loss, (SEG_X, SEG_Y), {"gamma": scalar(0.75), "alpha": scalar(0.4)})
    ],
    "jaccard_loss": [
        G(jl.jaccard_loss, (SEG_X, SEG_P), {"soft_label": True, "smooth": scalar(0.1)})
    ],
    "lovasz_hinge_loss": [G(jl.lovasz_hinge_loss, (SEG_X[..., 0], SEG_BIN.astype(np.int32)))],
    "lovasz_softmax_loss": [
        G(jl.lovasz_softmax_loss, (SEG_X, SEG_Y), {"per_image": True, "weights": _u(0.5, 2, B)}),
        G(jl.lovasz_softmax_loss, (SEG_P, SEG_Y), {"from_logits": False, "classes": "all"}),
    ],
    "dice_bce_loss": [
        G(
            jl.dice_bce_loss,
            (SEG_X[..., 0], SEG_BIN),
            {"dice_weight": scalar(0.4), "pos_weight": scalar(1.5)},
        )
    ],
    "dice_ce_loss": [
        G(jl.dice_ce_loss, (SEG_X, SEG_Y), {"dice_weight": scalar(0.4), "class_weights": CW})
    ],
    "generalized_dice_loss": [
        G(jl.generalized_dice_loss, (SEG_X, SEG_Y), {"smooth": scalar(0.1)}),
        G(jl.generalized_dice_loss, (SEG_X, SEG_Y), {"w_type": "simple", "per_image": False}),
    ],
    "generalized_wasserstein_dice_loss": [
        G(
            jl.generalized_wasserstein_dice_loss,
            (SEG_X, SEG_Y, (1 - np.eye(C)) * _u(0.5, 1.0, C, C)),
            {"smooth": scalar(0.1)},
        )
    ],
    # --- ranking, sequence
    "ranking_softmax_loss": [
        G(jl.ranking_softmax_loss, (X, _u(0, 2, B, C)), {"weights": _u(0.5, 2, B, C)})
    ],
    "ctc_loss": [
        G(
            jl.ctc_loss,
            (
                _n(2, 5, C),
                Fixed(np.zeros((2, 5))),
                np.array([[1, 2], [3, 3]], np.int32),
                Fixed(np.zeros((2, 2))),
            ),
            {"weights": _u(0.5, 2, 2), **mean},
        )
    ],
    "ctc_loss_with_forward_probs": [
        G(
            jl.ctc_loss_with_forward_probs,
            (
                _n(2, 5, C),
                Fixed(np.zeros((2, 5))),
                np.array([[1, 2], [3, 1]], np.int32),
                Fixed(np.zeros((2, 2))),
            ),
            atol=1e-4,  # the forward probabilities hold log_epsilon = -1e5: differences lose 1e-5
        )
    ],
    # --- clustering
    "pairwise_sq_distances": [G(jl.pairwise_sq_distances, (FEAT, CENT))],
    "kmeans_loss": [G(jl.kmeans_loss, (FEAT, CENT), {"weights": _u(0.5, 2, 6)})],
    "soft_kmeans_assign": [G(jl.soft_kmeans_assign, (FEAT, CENT), {"temperature": scalar(0.7)})],
    "soft_kmeans_loss": [
        G(jl.soft_kmeans_loss, (FEAT, CENT), {"temperature": scalar(0.7), "weights": _u(0.5, 2, 6)})
    ],
    "lloyd_step": [G(jl.lloyd_step, (FEAT, CENT), {"weights": _u(0.5, 2, 6)})],
    "class_centroids": [G(jl.class_centroids, (FEAT, FEAT_Y, 3), {"weights": _u(0.5, 2, 6)})],
    "center_loss": [
        G(
            jl.center_loss,
            (FEAT, FEAT_Y, CENT),
            {"weights": _u(0.5, 2, 6), "class_weights": CW, **wmean},
        )
    ],
    # the features are under stop_gradient by design (Wen et al.'s update; documented)
    "center_loss_update": [
        G(jl.center_loss_update, (CENT, Fixed(FEAT), FEAT_Y), {"alpha": scalar(0.4)})
    ],
    "centroid_hinge_loss": [G(jl.centroid_hinge_loss, (FEAT, FEAT_Y, 3), {"delta": scalar(0.2)})],
    # --- semi-supervised, dropout, penalties, weighting
    "entropy_loss": [G(jl.entropy_loss, (X,), {"weights": W, **wmean})],
    "pseudo_label_loss": [
        # the weak view is the target, under stop_gradient by design (FixMatch; documented)
        G(
            lambda w, s, **kw: jl.pseudo_label_loss(w, s, **kw)[0],
            (Fixed(X * 2), _n(B, C)),
            {"threshold": 0.5, "hard": False},
        )
    ],
    "consistency_loss": [
        G(jl.consistency_loss, (X, _n(B, C)), {"stop_gradient_teacher": False}),
        G(jl.consistency_loss, (X, _n(B, C)), {"kind": "kl", "stop_gradient_teacher": False}),
    ],
    "sharpen": [G(jl.sharpen, (P, 0.5))],
    "sigmoid_rampup": [G(jl.sigmoid_rampup, (scalar(3.0), scalar(10.0)))],
    "mixup": [G(lambda x, y: jl.mixup(jax.random.key(0), x, y, alpha=0.4), (PRED, P))],
    "label_spreading": [
        G(
            jl.label_spreading,
            (FEAT, np.array([0, -1, 1, -1, 2, -1], np.int32)),
            {"gamma": scalar(0.5), "method": "solve", "num_classes": 3},
        )
    ],
    "label_propagation": [
        G(
            jl.label_propagation,
            (FEAT, np.array([0, -1, 1, -1, 2, -1], np.int32)),
            {"gamma": scalar(0.5), "method": "solve", "num_classes": 3},
        )
    ],
    "dropout": [G(lambda x, r: jl.dropout(jax.random.key(1), x, r), (PRED, scalar(0.3)))],
    "dropout_mask": [
        G(
            lambda r: jl.dropout_mask(jax.random.key(1), (B, C), r, dtype=jnp.float64),
            (scalar(0.3),),
        )
    ],
    "alpha_dropout": [
        G(lambda x, r: jl.alpha_dropout(jax.random.key(2), x, r), (PRED, scalar(0.2)))
    ],
    "l1_penalty": [G(jl.l1_penalty, (PRED, scalar(0.3)))],
    "l2_penalty": [G(jl.l2_penalty, (PRED, scalar(0.3)))],
    "elastic_net_penalty": [G(jl.elastic_net_penalty, (PRED, scalar(0.3), scalar(0.6)))],
    "class_weights": [
        G(jl.class_weights, (_u(1, 9, C),)),
        G(jl.class_weights, (_u(1, 9, C),), {"method": "effective_number", "beta": scalar(0.9)}),
    ],
    "class_weight_map": [G(jl.class_weight_map, (SEG_Y, CW))],
    "soft_precision": [G(jl.soft_precision, (P, Y), {"average": "macro", "weights": W})],
    "soft_recall": [G(jl.soft_recall, (P, Y), {"average": "macro", "weights": W})],
    "soft_f1_loss": [G(jl.soft_f1_loss, (P, Y), {"average": "macro", "weights": W})],
}

#: name → why there is no gradient to compare with finite differences.
NOT_DIFFERENTIABLE: dict[str, str] = {
    "checked": "a function wrapper (its gradient is the wrapped function's; test_checked.py)",
    "one_hot": "integer labels in, a constant one-hot out",
    "kmeans_assign": "an argmin: integer cluster indices",
    "labeled_mask": "a boolean mask of integer labels",
    "weighted_sample": "integer sample indices",
    "class_counts": "counts of integer labels",
    "class_image_counts": "counts of integer labels",
    "straight_through": "a straight-through estimator: its gradient is the surrogate's by design",
    "straight_through_argmax": "a straight-through estimator: one-hot value, softmax gradient",
    "straight_through_round": "a straight-through estimator: rounded value, identity gradient",
    "inject_grad": "injects a given gradient: not the derivative of its value by design",
    "backprop_from": "backpropagates a given cotangent through a user function",
    "per_example_grads": "a transformation of a user loss (test_gradients.py compares it)",
    "per_example_value_and_grad": "a transformation of a user loss (test_gradients.py)",
    "weighted_grad": "a transformation of a user loss (test_gradients.py)",
    "weighted_value_and_grad": "a transformation of a user loss (test_gradients.py)",
    "check_grads": "the finite-difference checker itself",
    "vat_loss": "the adversarial direction and the clean prediction are constants "
    "(stop_gradient, Miyato et al.): its gradient is not the derivative of its value",
    "accuracy": "a count of correct predictions: piecewise constant",
    "top_k_accuracy": "a count of correct predictions: piecewise constant",
    "confusion_matrix": "counts of integer labels and predictions",
    "normalize_confusion": "normalises a count matrix (a metric, not a training objective)",
    "multilabel_confusion_matrix": "counts of thresholded predictions: piecewise constant",
    "precision_recall_fscore": "ratios of confusion counts (a metric of counts)",
    "specificity": "from integer labels and predictions: piecewise constant",
    "jaccard_index": "from integer labels and predictions: piecewise constant",
    "dice_score": "from integer labels and predictions: piecewise constant",
    "matthews_corrcoef": "from integer labels and predictions: piecewise constant",
    "cohen_kappa": "from integer labels and predictions: piecewise constant",
    "roc_curve": "thresholds and rates of a ranking: piecewise constant in the scores",
    "precision_recall_curve": "a ranking curve: piecewise constant in the scores",
    "roc_auc": "a ranking statistic: piecewise constant in the scores",
    "average_precision": "a ranking statistic: piecewise constant in the scores",
    "multiclass_roc_auc": "a ranking statistic: piecewise constant in the scores",
    "multilabel_roc_auc": "a ranking statistic: piecewise constant in the scores",
    "multiclass_average_precision": "a ranking statistic: piecewise constant in the scores",
    "multilabel_average_precision": "a ranking statistic: piecewise constant in the scores",
    "merge_states": "adds metric states (counts)",
    "confusion_init": "a zero state",
    "confusion_update": "adds counts of thresholded predictions",
    "confusion_compute": "metrics from counts",
    "ranking_init": "a zero state",
    "ranking_update": "histograms of scores: piecewise constant",
    "ranking_compute": "metrics from histograms",
    "regression_init": "a zero state",
    "regression_update": "streaming moments of a metric state (mean_squared_error and r2_score "
    "carry the gradients of the batch metrics)",
    "regression_compute": "metrics from streaming moments",
    "calibration_init": "a zero state",
    "calibration_update": "histograms of confidences: piecewise constant",
    "calibration_compute": "metrics from histograms",
}


def _public_functions() -> list[str]:
    return [n for n in jl.__all__ if inspect.isfunction(getattr(jl, n))]


def test_every_public_function_is_described():
    """Each public function has gradient cases or a reason why not; none has both."""
    names = set(_public_functions())
    missing = sorted(names - set(CASES) - set(NOT_DIFFERENTIABLE))
    assert not missing, f"public functions with no gradient case and no reason: {missing}"
    both = sorted(set(CASES) & set(NOT_DIFFERENTIABLE))
    assert not both, f"both a gradient case and a reason: {both}"
    stale = sorted((set(CASES) | set(NOT_DIFFERENTIABLE)) - names)
    assert not stale, f"entries for names that are not public functions: {stale}"


def test_every_case_differentiates_something():
    for name, cases in CASES.items():
        for case in cases:
            assert case.split()[1], f"{name}: a case without a float argument"


IDS = [(name, i) for name, cases in CASES.items() for i in range(len(cases))]


def assert_grads_match_fd(fn, values, rtol, atol, eps):
    """``jax.grad`` of ``fn`` at ``values`` against central differences, for every argument.

    One compiled program: ``vmap`` of ``value_and_grad`` over the base point and every ±eps
    perturbation (the values at the perturbations give the differences; the gradient at the
    base point is the one checked). Call inside :func:`float64`.
    """
    n = len(values)
    stacks = [[v] for v in values]
    for i, v in enumerate(values):
        for j in range(v.size):
            for sign in (1.0, -1.0):
                moved = v.copy()
                moved.flat[j] += sign * eps
                for k in range(n):
                    stacks[k].append(moved if k == i else values[k])
    batched = [jnp.asarray(np.stack(s)) for s in stacks]
    value, grads = jax.jit(jax.vmap(jax.value_and_grad(fn, argnums=tuple(range(n)))))(*batched)
    value = np.asarray(value)
    start = 1
    for i, v in enumerate(values):
        diffs = value[start : start + 2 * v.size].reshape(v.size, 2)
        start += 2 * v.size
        numeric = ((diffs[:, 0] - diffs[:, 1]) / (2 * eps)).reshape(v.shape)
        np.testing.assert_allclose(
            np.asarray(grads[i][0]), numeric, rtol=rtol, atol=atol, err_msg=f"argument {i}"
        )


@pytest.mark.parametrize(("name", "i"), IDS, ids=[f"{n}-{i}" for n, i in IDS])
def test_grad_matches_central_differences(name, i):
    case = CASES[name][i]
    with float64(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # convex_kl_divergence
        fn, values = case.split()
        assert_grads_match_fd(fn, values, rtol=case.rtol, atol=case.atol, eps=case.eps)
