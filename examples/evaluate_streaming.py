"""Streaming evaluation: metric states accumulated over batches inside one jitted ``lax.scan``.

Trains a softmax (multinomial logistic) regression on scikit-learn's digits with plain gradient
descent on jaxloss's cross-entropy, then evaluates the test split the way a large evaluation
runs: in batches, with the last batch padded and the padding marked by ``where``. One jitted
function scans over the batches and carries four metric states (pytrees of sums):

* ``confusion``: accuracy, macro F1, mean IoU, MCC, Cohen's κ, specificity;
* ``ranking`` (Keras's 200-threshold grid, one-vs-rest per class): macro ROC AUC and average
  precision, with the bound the state gives on their distance to the exact values;
* ``calibration`` (15 bins): expected / maximum calibration error and a reliability diagram;
* ``regression`` of the true class's predicted probability against 1: its MSE is
  ``mean((1 - p_y)^2)``, a Brier-style score of the confidence in the right answer.

Every number is checked against scikit-learn (or, for calibration, a NumPy transcription of
torchmetrics' definition) on the whole split at once, then the reliability diagram is written.
States are sums, so the same code merges batches from several devices with ``jax.lax.psum``.

Run from the repository root::

    .venv/bin/python examples/evaluate_streaming.py

Writes examples/output/reliability_diagram.png.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from sklearn import metrics as skm
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import jaxloss as jl

matplotlib.use("Agg")
import matplotlib.pyplot as plt

OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")
SEED = 0
STEPS = 150
LEARNING_RATE = 0.5
BATCH = 64
NUM_CLASSES = 10
NUM_BINS = 15


def load_split() -> tuple[np.ndarray, ...]:
    """Standardised 8x8 digit images, 70 / 30 train / test split (fixed seed)."""
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x.astype(np.float32), y.astype(np.int32), test_size=0.3, random_state=SEED, stratify=y
    )
    mean, std = x_train.mean(0), x_train.std(0) + 1.0
    return (x_train - mean) / std, y_train, (x_test - mean) / std, y_test


def train(x: np.ndarray, y: np.ndarray) -> tuple[jax.Array, jax.Array]:
    """Full-batch gradient descent on the mean cross-entropy plus a small L2 penalty."""

    def loss(params):
        w, b = params
        ce = jl.softmax_cross_entropy_with_integer_labels(x @ w + b, y, reduction="mean")
        return ce + 1e-3 * jnp.sum(w * w)

    @jax.jit
    def fit(params):
        def step(params, _):
            grads = jax.grad(loss)(params)
            return jax.tree.map(lambda p, g: p - LEARNING_RATE * g, params, grads), None

        return jax.lax.scan(step, params, None, length=STEPS)[0]

    return fit((jnp.zeros((x.shape[1], NUM_CLASSES)), jnp.zeros(NUM_CLASSES)))


def batches(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """``[num_batches, BATCH, ...]`` arrays, the last batch padded; ``where`` marks real rows."""
    num_batches = -(-len(y) // BATCH)
    pad = num_batches * BATCH - len(y)
    x = np.concatenate([x, np.zeros((pad, x.shape[1]), x.dtype)])
    y = np.concatenate([y, np.full(pad, -1, y.dtype)])  # padding: any label, where=False
    where = np.arange(len(y)) < len(y) - pad
    shape = (num_batches, BATCH)
    return x.reshape(*shape, -1), y.reshape(shape), where.reshape(shape)


@jax.jit
def evaluate(params, x_batches, y_batches, where_batches):
    """One compiled pass over every batch, carrying the metric states."""
    w, b = params
    init = (
        jl.confusion_init(NUM_CLASSES),
        jl.ranking_init(200, num_classes=NUM_CLASSES),
        jl.calibration_init(NUM_BINS),
        jl.regression_init(),
    )

    def step(states, batch):
        x, y, where = batch
        probs = jax.nn.softmax(x @ w + b, axis=-1)
        confusion, ranking, calibration, regression = states
        hot = jax.nn.one_hot(y, NUM_CLASSES)
        true_prob = jnp.sum(probs * hot, axis=-1)
        return (
            jl.confusion_update(confusion, y, probs, where=where),
            jl.ranking_update(ranking, probs, y, where=where),
            jl.calibration_update(calibration, probs, y, where=where),
            jl.regression_update(regression, true_prob, jnp.ones_like(true_prob), where=where),
        ), None

    confusion, ranking, calibration, regression = jax.lax.scan(
        step, init, (x_batches, y_batches, where_batches)
    )[0]
    return (
        jl.confusion_compute(confusion, average="macro"),
        jl.ranking_compute(ranking, average="macro"),
        jl.calibration_compute(calibration),
        jl.regression_compute(regression),
    )


def torchmetrics_ece(probs: np.ndarray, y: np.ndarray) -> float:
    """torchmetrics' multi-class ECE (norm="l1") with right-closed bins, in NumPy."""
    confidence, correct = probs.max(1), (probs.argmax(1) == y).astype(float)
    bins = np.searchsorted(np.linspace(0, 1, NUM_BINS + 1)[1:-1], confidence)
    gap = np.bincount(bins, correct - confidence, minlength=NUM_BINS)
    return float(np.abs(gap).sum() / len(y))


def main() -> None:
    x_train, y_train, x_test, y_test = load_split()
    params = train(x_train, y_train)
    confusion, ranking, calibration, regression = evaluate(params, *batches(x_test, y_test))

    w, b = params
    probs = np.asarray(jax.nn.softmax(x_test @ w + b, axis=-1), np.float64)
    pred = probs.argmax(1)
    num_batches = -(-len(y_test) // BATCH)
    print(
        f"digits test split: {len(y_test)} images in {num_batches} batches of {BATCH} "
        "(last one padded, where=False)"
    )
    checks = [
        ("accuracy", confusion.accuracy, skm.accuracy_score(y_test, pred), 1e-6),
        ("macro F1", confusion.fscore, skm.f1_score(y_test, pred, average="macro"), 1e-5),
        ("mean IoU", confusion.jaccard, skm.jaccard_score(y_test, pred, average="macro"), 1e-5),
        ("MCC", confusion.matthews_corrcoef, skm.matthews_corrcoef(y_test, pred), 1e-5),
        ("Cohen's kappa", confusion.cohen_kappa, skm.cohen_kappa_score(y_test, pred), 1e-5),
        (
            "ECE (15 bins)",
            calibration.expected_calibration_error,
            torchmetrics_ece(probs, y_test),
            1e-5,
        ),
        (
            "mean (1 - p_true)^2",
            regression.mean_squared_error,
            float(np.mean((1 - probs[np.arange(len(y_test)), y_test]) ** 2)),
            1e-5,
        ),
    ]
    print(f"{'metric':22s} {'accumulated':>12s} {'scikit-learn':>13s}")
    for name, got, want, rtol in checks:
        print(f"{name:22s} {float(got):12.6f} {want:13.6f}")
        np.testing.assert_allclose(float(got), want, rtol=rtol, err_msg=name)

    # The ranking state works on a grid: its AUC / AP are within their stated bounds of the
    # exact values (which the one-call per-batch functions give on the whole split).
    for name, got, bound, want in (
        (
            "macro ROC AUC",
            ranking.roc_auc,
            ranking.roc_auc_bound,
            skm.roc_auc_score(y_test, probs, multi_class="ovr"),
        ),
        (
            "macro AP",
            ranking.average_precision,
            ranking.average_precision_bound,
            skm.average_precision_score(y_test, probs),
        ),
    ):
        got, bound = float(got), float(bound)
        print(f"{name:22s} {got:12.6f} {want:13.6f}   (grid; bound ±{bound:.2e})")
        assert abs(got - want) <= bound + 1e-6, name
    exact = float(jl.multiclass_roc_auc(jnp.asarray(probs, jnp.float32), y_test))
    np.testing.assert_allclose(exact, skm.roc_auc_score(y_test, probs, multi_class="ovr"), 1e-5)
    print(f"{'exact one-call AUC':22s} {exact:12.6f}")
    print("all accumulated metrics equal scikit-learn on the whole split")

    os.makedirs(OUTPUT, exist_ok=True)
    edges = np.asarray(calibration.bin_edges)
    centers = (edges[:-1] + edges[1:]) / 2
    count = np.asarray(calibration.count)
    nonempty = count > 0
    fig, (ax, ax_count) = plt.subplots(
        2, 1, figsize=(6, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    width = edges[1] - edges[0]
    ax.bar(
        centers[nonempty],
        np.asarray(calibration.accuracy)[nonempty],
        width=width * 0.9,
        color="C0",
        label="accuracy in bin",
    )
    ax.plot(
        np.asarray(calibration.confidence)[nonempty],
        np.asarray(calibration.accuracy)[nonempty],
        "o",
        c="C3",
        label="(mean confidence, accuracy)",
    )
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ece, mce = (
        float(calibration.expected_calibration_error),
        float(calibration.maximum_calibration_error),
    )
    ax.set_title(f"Reliability diagram, digits test split (ECE {ece:.3f}, MCE {mce:.3f})")
    ax.legend(loc="upper left")
    ax_count.bar(centers, count, width=width * 0.9, color="C7")
    ax_count.set_yscale("log")
    ax_count.set_xlabel("top-1 confidence")
    ax_count.set_ylabel("images")
    ax_count.set_xlim(0, 1)
    path = os.path.join(OUTPUT, "reliability_diagram.png")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
