"""The functions with a class axis, as cases for the sharding matrix and the export suite.

Imported by ``tests/scale_worker.py`` (the subprocess with 8 host devices) and by
``tests/test_scale.py`` (the export suite and the test ids). Every case is a function of arrays
whose first argument is the one differentiated (when ``grad``), with a layout per argument:

* ``"B"`` a batch axis, split over the data axis of the mesh (``shard_map``: over all devices);
* ``"C"`` a class axis, split over the model axis under ``jit`` (whole inside ``shard_map``);
* ``"c"`` a class axis that is never split (class weights, a cost matrix, centroids);
* ``"_"`` an axis that is not split (pixels, frames, features).

so ``"B_C"`` is ``[B, T, C]`` logits sharded ``P("data", None, "model")``. The export suite
makes every ``B`` axis the symbolic dimension ``b`` and every ``C``/``c`` axis ``c``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

import jaxloss as jl

#: Rows, classes, pixels per side, frames, features of the matrix's inputs.
B, C, H, T, D = 16, 128, 4, 8, 4
#: Mesh axis names: the batch is split over DATA, the class axis over MODEL.
DATA, MODEL = "data", "model"


@dataclass(frozen=True)
class Case:
    """``fn(*args)``; ``layouts[i]`` is the layout string of ``args[i]``."""

    name: str
    fn: Callable
    args: tuple
    layouts: tuple[str, ...]
    grad: bool = True
    #: ``fn(*args, axis_name=...)`` is a loss reduced over the batch: inside ``shard_map`` it
    #: must give the global value (False where the function has no batch reduction).
    takes_axis_name: bool = False
    #: Under ``jit`` with the class axis sharded, whole rows are gathered, as the function's
    #: docstring says (a sort along the class axis; a product that mixes all classes).
    gathers_class_axis: bool = False
    #: Tolerance of the comparison with one device.
    rtol: float = 2e-5


def _data():
    rng = np.random.default_rng(0)
    f32 = np.float32
    d = {}
    d["logits"] = (rng.normal(size=(B, C)) * 2).astype(f32)
    d["labels"] = rng.integers(0, C, size=B).astype(np.int32)
    d["ignored"] = np.where(np.arange(B) % 5 == 0, -1, d["labels"]).astype(np.int32)
    d["probs"] = rng.dirichlet(np.ones(C) * 0.3, size=B).astype(f32)
    d["onehot"] = np.eye(C, dtype=f32)[d["labels"]]
    d["cw"] = rng.uniform(0.5, 2.0, C).astype(f32)
    d["weights"] = rng.uniform(0.0, 2.0, B).astype(f32)
    d["cost"] = (1.0 - np.eye(C) + rng.uniform(0, 0.5, (C, C))).astype(f32)
    d["class_mask"] = rng.random((B, C)) > 0.2
    d["class_mask"][np.arange(B), d["labels"]] = True
    d["positive"] = rng.uniform(0.05, 1.0, size=(B, C)).astype(f32)
    d["seg_logits"] = rng.normal(size=(B, H, H, C)).astype(f32)
    d["seg_labels"] = rng.integers(0, C, size=(B, H, H)).astype(np.int32)
    d["seg_onehot"] = np.eye(C, dtype=f32)[d["seg_labels"]]
    d["ctc_logits"] = rng.normal(size=(B, T, C)).astype(f32)
    d["ctc_labels"] = rng.integers(1, C, size=(B, 3)).astype(np.int32)
    d["points"] = rng.normal(size=(B, D)).astype(f32)
    d["centroids"] = rng.normal(size=(C, D)).astype(f32)
    d["relevance"] = (rng.random((B, C)) > 0.9).astype(f32)
    d["binary_logits"] = rng.normal(size=(B, H, H)).astype(f32)
    d["binary_labels"] = rng.integers(0, 2, size=(B, H, H)).astype(np.int32)
    return d


def cases() -> list[Case]:
    """Every public function with a class axis (metrics included), as matrix cases."""
    d = _data()
    x, y, yi, p, oh = d["logits"], d["labels"], d["ignored"], d["probs"], d["onehot"]
    cw, w, cost = d["cw"], d["weights"], d["cost"]
    log_q = np.asarray(jax.nn.log_softmax(x)).astype(np.float32)

    def loss(name, fn, args, layouts, **kw):
        """A loss called as ``fn(*args, reduction="mean")``, global inside shard_map."""

        def mean(*a, axis_name=None):
            return fn(*a, reduction="mean", axis_name=axis_name)

        return Case(name, mean, args, layouts, takes_axis_name=True, **kw)

    sce_int = jl.softmax_cross_entropy_with_integer_labels
    out = [
        loss("softmax_cross_entropy_with_integer_labels", sce_int, (x, y), ("BC", "B")),
        Case(
            "softmax_cross_entropy_with_integer_labels+cw+smoothing+ignore",
            lambda x, y, cw, w, axis_name=None: sce_int(
                x,
                y,
                class_weights=cw,
                weights=w,
                ignore_index=-1,
                label_smoothing=0.1,
                reduction="weighted_mean",
                axis_name=axis_name,
            ),
            (x, yi, cw, w),
            ("BC", "B", "c", "B"),
            takes_axis_name=True,
        ),
        loss(
            "softmax_cross_entropy_with_integer_labels+bf16",
            sce_int,
            (x.astype(jnp.bfloat16), y),
            ("BC", "B"),
            rtol=1e-2,
        ),
        Case(
            "softmax_cross_entropy_with_integer_labels+class_mask",
            lambda x, y, m: sce_int(x, y, where=m, reduction="mean"),
            (x, y, d["class_mask"]),
            ("BC", "B", "BC"),
        ),
        loss("softmax_cross_entropy", jl.softmax_cross_entropy, (x, p), ("BC", "BC")),
        Case(
            "softmax_cross_entropy+cw+smoothing",
            lambda x, p, cw, axis_name=None: jl.softmax_cross_entropy(
                x,
                p,
                class_weights=cw,
                label_smoothing=0.1,
                reduction="weighted_mean",
                axis_name=axis_name,
            ),
            (x, p, cw),
            ("BC", "BC", "c"),
            takes_axis_name=True,
        ),
        loss("safe_softmax_cross_entropy", jl.safe_softmax_cross_entropy, (x, oh), ("BC", "BC")),
        loss(
            "categorical_cross_entropy",
            jl.categorical_cross_entropy,
            (d["positive"], p),
            ("BC", "BC"),
        ),
        loss("poly_loss_cross_entropy", jl.poly_loss_cross_entropy, (x, oh), ("BC", "BC")),
        Case("smooth_labels", lambda p: jl.smooth_labels(p, 0.1), (p,), ("BC",)),
        loss("softmax_focal_loss", jl.softmax_focal_loss, (x, y), ("BC", "B")),
        loss("softmax_focal_loss+probabilities", jl.softmax_focal_loss, (x, p), ("BC", "BC")),
        loss(
            "expected_cost_loss",
            lambda x, y, c, **kw: jl.expected_cost_loss(x, y, c, **kw),
            (x, y, cost),
            ("BC", "B", "cc"),
        ),
        loss(
            "expected_cost_loss+probabilities",
            lambda x, p, c, **kw: jl.expected_cost_loss(x, p, c, **kw),
            (x, p, cost),
            ("BC", "BC", "cc"),
            gathers_class_axis=True,  # y @ C mixes all classes of a row
        ),
        loss(
            "confusion_weighted_cross_entropy",
            lambda x, y, c, **kw: jl.confusion_weighted_cross_entropy(x, y, c, **kw),
            (x, y, cost),
            ("BC", "B", "cc"),
        ),
        loss(
            "confusion_weighted_cross_entropy+probabilities",
            lambda x, p, c, **kw: jl.confusion_weighted_cross_entropy(x, p, c, **kw),
            (x, oh, cost),
            ("BC", "BC", "cc"),
        ),
        loss("multiclass_hinge_loss", jl.multiclass_hinge_loss, (x, y), ("BC", "B")),
        loss("multiclass_perceptron_loss", jl.multiclass_perceptron_loss, (x, y), ("BC", "B")),
        loss(
            "multi_margin_loss",
            lambda x, y, cw, **kw: jl.multi_margin_loss(x, y, p=2, class_weights=cw, **kw),
            (x, y, cw),
            ("BC", "B", "c"),
        ),
        loss("kl_divergence", jl.kl_divergence, (log_q, p), ("BC", "BC")),
        loss(
            "kl_divergence_with_log_targets",
            jl.kl_divergence_with_log_targets,
            (log_q, np.log(p + 1e-3)),
            ("BC", "BC"),
        ),
        loss("convex_kl_divergence", jl.convex_kl_divergence, (log_q, p), ("BC", "BC")),
        loss("generalized_kl_divergence", jl.generalized_kl_divergence, (log_q, p), ("BC", "BC")),
        loss(
            "multiclass_sparsemax_loss",
            jl.multiclass_sparsemax_loss,
            (x, y),
            ("BC", "B"),
            gathers_class_axis=True,
        ),
        loss(
            "make_fenchel_young_loss",
            jl.make_fenchel_young_loss(jax.scipy.special.logsumexp),
            (x, p),
            ("BC", "BC"),
        ),
        Case("sparsemax", jl.sparsemax, (x,), ("BC",), gathers_class_axis=True),
        Case("softmax", jl.softmax, (x,), ("BC",)),
        Case("log_softmax", jl.log_softmax, (x,), ("BC",)),
        Case("logsumexp", jl.logsumexp, (x,), ("BC",)),
        Case("one_hot", lambda y: jl.one_hot(y, C, ignore_index=-1), (yi,), ("B",), grad=False),
        loss("entropy_loss", jl.entropy_loss, (x,), ("BC",)),
        Case(
            "pseudo_label_loss",
            lambda s, w, axis_name=None: jl.pseudo_label_loss(
                w, s, threshold=0.05, reduction="mean", axis_name=axis_name
            )[0],
            (x, x[::-1] * 3),
            ("BC", "BC"),
            takes_axis_name=True,
        ),
        Case(
            "consistency_loss",
            lambda s, t: jl.consistency_loss(s, t, kind="kl"),
            (x, x[::-1]),
            ("BC", "BC"),
        ),
        Case("sharpen", lambda p: jl.sharpen(p, 0.5), (p,), ("BC",)),
        Case("straight_through_argmax", jl.straight_through_argmax, (x,), ("BC",)),
        Case("soft_argmax", jl.soft_argmax, (x,), ("BC",)),
        Case(
            "ranking_softmax_loss",
            lambda x, r: jl.ranking_softmax_loss(x, r),
            (x, d["relevance"]),
            ("BC", "BC"),
        ),
        loss(
            "ctc_loss",
            jl.ctc_loss,
            (
                d["ctc_logits"],
                np.zeros((B, T), np.float32),
                d["ctc_labels"],
                np.zeros(d["ctc_labels"].shape, np.float32),
            ),
            ("B_C", "B_", "B_", "B_"),
        ),
    ]
    out += [
        loss("negative_log_likelihood", jl.negative_log_likelihood, (log_q, y), ("BC", "B")),
        loss(
            "additive_margin_softmax_loss",
            jl.additive_margin_softmax_loss,
            (np.tanh(x).astype(np.float32), y),
            ("BC", "B"),
            rtol=1e-4,
        ),
        loss("categorical_focal_loss", jl.categorical_focal_loss, (d["positive"], p), ("BC", "BC")),
        loss("generalized_cross_entropy", jl.generalized_cross_entropy, (x, y), ("BC", "B")),
        loss(
            "distillation_loss",
            lambda s, t, **kw: jl.distillation_loss(s, t, 2.0, **kw),
            (x, x[::-1]),
            ("BC", "BC"),
        ),
        loss(
            "multilabel_margin_loss",
            jl.multilabel_margin_loss,
            (x, d["relevance"]),
            ("BC", "BC"),
            gathers_class_axis=True,  # every class is compared with every other
        ),
    ]
    for name in ("jaccard_index", "dice_score", "specificity", "matthews_corrcoef", "cohen_kappa"):
        metric = getattr(jl, name)
        out.append(
            Case(
                name,
                lambda y, q, fn=metric: fn(y, q, C),
                (y, np.roll(y, 3)),
                ("B", "B"),
                grad=False,
            )
        )
    seg_x, seg_y, seg_oh = d["seg_logits"], d["seg_labels"], d["seg_onehot"]
    for name in (
        "soft_dice_loss",
        "tversky_loss",
        "jaccard_loss",
        "focal_tversky_loss",
        "dice_ce_loss",
    ):
        out.append(loss(name, getattr(jl, name), (seg_x, seg_y), ("B__C", "B__")))
    out += [
        loss("generalized_dice_loss", jl.generalized_dice_loss, (seg_x, seg_y), ("B__C", "B__")),
        loss(
            "generalized_wasserstein_dice_loss",
            jl.generalized_wasserstein_dice_loss,
            (seg_x, seg_y, d["cost"]),
            ("B__C", "B__", "cc"),
        ),
        loss(
            "lovasz_softmax_loss",
            lambda x, y, **kw: jl.lovasz_softmax_loss(x, y, per_image=True, **kw),
            (seg_x, seg_y),
            ("B__C", "B__"),
        ),
        Case("dice_loss", jl.dice_loss, (seg_x, seg_oh), ("B__C", "B__C")),
        Case(
            "multiclass_generalized_dice_loss",
            jl.multiclass_generalized_dice_loss,
            (seg_x, seg_oh),
            ("B__C", "B__C"),
        ),
        loss(
            "lovasz_hinge_loss",  # no class axis; sorts each image's pixels (kept whole here)
            jl.lovasz_hinge_loss,
            (d["binary_logits"], d["binary_labels"]),
            ("B__", "B__"),
        ),
        Case("class_counts", lambda y: jl.class_counts(y, C), (y,), ("B",), grad=False),
        Case(
            "class_image_counts",
            lambda y: jl.class_image_counts(y, C),
            (seg_y,),
            ("B__",),
            grad=False,
        ),
        Case("class_weight_map", lambda cw, y: jl.class_weight_map(y, cw), (cw, y), ("c", "B")),
    ]
    pts, cents = d["points"], d["centroids"]
    out += [
        Case(
            "kmeans_loss",
            lambda c, x, axis_name=None: jl.kmeans_loss(
                x, c, reduction="mean", axis_name=axis_name
            ),
            (cents, pts),
            ("c_", "B_"),
            takes_axis_name=True,
        ),
        Case(
            "soft_kmeans_loss",
            lambda c, x, axis_name=None: jl.soft_kmeans_loss(
                x, c, temperature=0.5, reduction="mean", axis_name=axis_name
            ),
            (cents, pts),
            ("c_", "B_"),
            takes_axis_name=True,
        ),
        Case(
            "kmeans_assign",
            lambda c, x: jl.kmeans_assign(x, c),
            (cents, pts),
            ("c_", "B_"),
            grad=False,
        ),
        Case(
            "soft_kmeans_assign",
            lambda c, x: jl.soft_kmeans_assign(x, c, temperature=0.5),
            (cents, pts),
            ("c_", "B_"),
        ),
        Case("lloyd_step", lambda c, x: jl.lloyd_step(x, c), (cents, pts), ("c_", "B_")),
        # Graph methods couple every pair of points: the point axis of the points and of the
        # [N, C] label rows is gathered (their docstrings say so), recorded as a gather.
        Case(
            "label_spreading",
            lambda x, y: jl.label_spreading(x, y, num_classes=C, gamma=0.5),
            (pts, d["ignored"]),
            ("B_", "B"),
            grad=False,
            gathers_class_axis=True,
        ),
        Case(
            "label_propagation",
            lambda x, y: jl.label_propagation(x, y, num_classes=C, gamma=0.5, method="solve"),
            (pts, d["ignored"]),
            ("B_", "B"),
            grad=False,
            gathers_class_axis=True,
        ),
        Case(
            "center_loss",
            lambda c, f, y, axis_name=None: jl.center_loss(
                f, y, c, reduction="mean", axis_name=axis_name
            ),
            (cents, pts, y),
            ("c_", "B_", "B"),
            takes_axis_name=True,
        ),
        Case(
            "center_loss_update",
            lambda c, f, y: jl.center_loss_update(c, f, y),
            (cents, pts, y),
            ("c_", "B_", "B"),
            grad=False,
        ),
        Case(
            "class_centroids",
            lambda f, y: jl.class_centroids(f, y, C)[0],
            (pts, y),
            ("B_", "B"),
        ),
        Case(
            "centroid_hinge_loss",
            lambda f, y: jl.centroid_hinge_loss(f, y % 8, 8, delta=0.1),
            (pts, y),
            ("B_", "B"),
        ),
    ]
    # metrics.py (converted on its own branch; see METRICS_PENDING in test_scale.py)
    out += [
        Case("accuracy", jl.accuracy, (x, y), ("BC", "B"), grad=False),
        Case(
            "top_k_accuracy",
            lambda x, y: jl.top_k_accuracy(x, y, 5),
            (x, y),
            ("BC", "B"),
            grad=False,
        ),
        Case(
            "confusion_matrix",
            lambda y, q: jl.confusion_matrix(y, q, C),
            (y, np.roll(y, 1)),
            ("B", "B"),
            grad=False,
        ),
        Case(
            "soft_f1_loss",
            lambda p, y: jl.soft_f1_loss(p, y, average="macro"),
            (p, y),
            ("BC", "B"),
        ),
        Case(
            "soft_precision",
            lambda p, y: jl.soft_precision(p, y, average="macro"),
            (p, y),
            ("BC", "B"),
        ),
        Case(
            "soft_recall", lambda p, y: jl.soft_recall(p, y, average="macro"), (p, y), ("BC", "B")
        ),
    ]
    return out


def other_losses() -> list[Case]:
    """The public losses without a class axis (for the export suite): ``[B, D]`` inputs."""
    rng = np.random.default_rng(1)
    f32 = np.float32
    a, b = rng.normal(size=(B, D)).astype(f32), rng.normal(size=(B, D)).astype(f32)
    positive = rng.uniform(0.5, 2.0, size=(B, D)).astype(f32)
    probs = rng.uniform(0.05, 0.95, size=(B, D)).astype(f32)
    binary = (rng.random((B, D)) > 0.5).astype(f32)
    signs = 2 * binary - 1
    counts = rng.poisson(2.0, size=(B, D)).astype(f32)
    group = (np.arange(B) // 2).astype(np.int32)
    images, masks = rng.normal(size=(B, H, H)).astype(f32), (rng.random((B, H, H)) > 0.5)
    params = rng.normal(size=(D, 3)).astype(f32)
    key = jax.random.key(0)

    def loss(name, fn, args, layouts):
        return Case(name, lambda *a: fn(*a, reduction="mean"), args, layouts)

    elementwise = [
        ("squared_error", jl.squared_error, (a, b)),
        ("l2_loss", jl.l2_loss, (a, b)),
        ("absolute_error", jl.absolute_error, (a, b)),
        ("huber_loss", jl.huber_loss, (a, b)),
        ("smooth_l1_loss", jl.smooth_l1_loss, (a, b)),
        ("log_cosh", jl.log_cosh, (a, b)),
        ("quantile_loss", lambda x, t, **kw: jl.quantile_loss(x, t, 0.8, **kw), (a, b)),
        ("absolute_percentage_error", jl.absolute_percentage_error, (a, positive)),
        ("squared_log_error", jl.squared_log_error, (probs, positive)),
        ("poisson_loss", jl.poisson_loss, (a, counts)),
        ("sigmoid_binary_cross_entropy", jl.sigmoid_binary_cross_entropy, (a, binary)),
        ("sigmoid_focal_loss", jl.sigmoid_focal_loss, (a, binary)),
        ("binary_cross_entropy", jl.binary_cross_entropy, (probs, binary)),
        ("hinge_loss", jl.hinge_loss, (a, signs)),
        ("perceptron_loss", jl.perceptron_loss, (a, signs)),
        ("squared_hinge_loss", jl.squared_hinge_loss, (a, signs)),
        ("binary_hinge_loss", jl.binary_hinge_loss, (a, binary)),
        ("sparsemax_loss", jl.sparsemax_loss, (a, binary)),
        ("cosine_distance", jl.cosine_distance, (a, b)),
        ("cosine_similarity", jl.cosine_similarity, (a, b)),
    ]
    out = [loss(n, f, args, ("B_", "B_")) for n, f, args in elementwise]
    out += [
        loss(
            "triplet_margin_loss",
            lambda x, p, n, **kw: jl.triplet_margin_loss(x, p, n, **kw),
            (a, b, b[::-1]),
            ("B_", "B_", "B_"),
        ),
        loss("ntxent", jl.ntxent, (a, group), ("B_", "B")),
        Case("binary_dice_loss", jl.binary_dice_loss, (images, masks), ("B__", "B__")),
        Case("dice_bce_loss", jl.dice_bce_loss, (images, masks), ("B__", "B__")),
        Case("mean_squared_error", jl.mean_squared_error, (a, b), ("B_", "B_")),
        Case("root_mean_squared_error", jl.root_mean_squared_error, (a, b), ("B_", "B_")),
        Case("mean_absolute_error", jl.mean_absolute_error, (a, b), ("B_", "B_")),
        Case(
            "mean_absolute_percentage_error",
            jl.mean_absolute_percentage_error,
            (a, positive),
            ("B_", "B_"),
        ),
        loss("binary_focal_loss", jl.binary_focal_loss, (probs, binary), ("B_", "B_")),
        loss(
            "gaussian_nll_loss",
            lambda x, t, v, **kw: jl.gaussian_nll_loss(x, t, v, **kw),
            (a, b, positive),
            ("B_", "B_", "B_"),
        ),
        loss("hinge_embedding_loss", jl.hinge_embedding_loss, (np.abs(a), signs), ("B_", "B_")),
        loss(
            "margin_ranking_loss",
            lambda x, z, t, **kw: jl.margin_ranking_loss(x, z, t, **kw),
            (a, b, signs),
            ("B_", "B_", "B_"),
        ),
        loss(
            "cosine_embedding_loss",
            lambda x, z, t, **kw: jl.cosine_embedding_loss(x, z, t, **kw),
            (a, b, signs[:, 0]),
            ("B_", "B_", "B"),
        ),
        loss("circle_loss", jl.circle_loss, (a, group), ("B_", "B")),
        loss(
            "supervised_contrastive_loss", jl.supervised_contrastive_loss, (a, group), ("B_", "B")
        ),
        loss("clip_loss", jl.clip_loss, (a, b), ("B_", "B_")),
        Case("r2_score", jl.r2_score, (a, b), ("B_", "B_")),
        # The token chunks of the fused linear cross-entropy are static: concrete dimensions
        # ("_"), as its docstring says. The vocab-parallel form runs here under
        # vmap(axis_name=) over two class shards, whose pmax needs concrete shapes (a limit of
        # vmap's collectives; inside shard_map the batch may be symbolic).
        Case(
            "linear_softmax_cross_entropy",
            lambda h, w, y: jl.linear_softmax_cross_entropy(h, w, y, chunk_size=6),
            (a, params, (group % 3).astype(np.int32)),
            ("__", "__", "_"),
        ),
        Case(
            "vocab_parallel_cross_entropy",
            lambda x, y: jax.vmap(
                lambda xs: jl.vocab_parallel_cross_entropy(xs, y, axis_name="v", reduction="mean"),
                axis_name="v",
            )(jnp.stack([x[:, :2], x[:, 2:]]))[0],
            (a, (group % 4).astype(np.int32)),
            ("__", "_"),
        ),
        Case(
            "vat_loss",
            lambda x: jl.vat_loss(lambda p, x: x @ p, params, x, key, reduction="mean"),
            (a,),
            ("B_",),
        ),
    ]
    return out


def spec(layout: str, manual: bool) -> jax.sharding.PartitionSpec:
    """The PartitionSpec of a layout: ``jit`` splits B over DATA and C over MODEL; inside
    ``shard_map`` (``manual``) B is split over both axes and C is whole."""
    P = jax.sharding.PartitionSpec
    if manual:
        return P(*[(DATA, MODEL) if a == "B" else None for a in layout])
    return P(*[DATA if a == "B" else MODEL if a == "C" else None for a in layout])
