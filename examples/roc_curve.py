"""ROC curve and AUC of a small classifier, computed inside jit with jaxloss.metrics.

Trains a logistic-regression model (JAX, plain gradient descent on jaxloss's sigmoid
cross-entropy) on scikit-learn's breast-cancer data, with "malignant" as the positive class,
then evaluates it on a held-out split:

* ``jaxloss.roc_auc`` / ``average_precision`` (checked against scikit-learn),
* ``jaxloss.roc_curve``: a static-size curve (one point per test example plus the origin)
  whose ``valid`` mask drops tied or excluded points, so the whole evaluation is one jitted
  function,
* a table and a plot of what moving the decision threshold trades: each threshold ``t``
  ("call malignant when p >= t") is one point (FPR, TPR) of the curve.

Run from the repository root::

    .venv/bin/python examples/roc_curve.py

Writes examples/output/roc_curve.png.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import average_precision_score, roc_auc_score

import jaxloss as jl

matplotlib.use("Agg")
import matplotlib.pyplot as plt

OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")
SEED = 0
STEPS = 300
LEARNING_RATE = 0.5
THRESHOLDS = (0.05, 0.2, 0.5, 0.8, 0.95)  # probability thresholds to annotate


def load_split() -> tuple[np.ndarray, ...]:
    """Standardised features; label 1 = malignant; 70 / 30 train / test split."""
    data = load_breast_cancer()
    x = data.data.astype(np.float32)
    y = (data.target == 0).astype(np.int32)  # sklearn: 0 = malignant
    order = np.random.default_rng(SEED).permutation(len(y))
    n_train = int(0.7 * len(y))
    train, test = order[:n_train], order[n_train:]
    mean, std = x[train].mean(0), x[train].std(0)
    x = (x - mean) / std
    return x[train], y[train], x[test], y[test]


def train(x: np.ndarray, y: np.ndarray) -> tuple[jax.Array, jax.Array]:
    def loss(params):
        w, b = params
        return jl.sigmoid_binary_cross_entropy(x @ w + b, y, reduction="mean") + 1e-3 * w @ w

    @jax.jit
    def step(params):
        grads = jax.grad(loss)(params)
        return jax.tree.map(lambda p, g: p - LEARNING_RATE * g, params, grads)

    params = (jnp.zeros(x.shape[1]), jnp.zeros(()))
    for _ in range(STEPS):
        params = step(params)
    return params


@jax.jit
def evaluate(params, x, y):
    """Everything the report needs, in one compiled function."""
    w, b = params
    probs = jax.nn.sigmoid(x @ w + b)
    fpr, tpr, thresholds, valid = jl.roc_curve(probs, y)
    predicted = (probs >= 0.5).astype(jnp.int32)
    confusion = jl.confusion_matrix(y, predicted, 2)
    return {
        "probs": probs,
        "curve": (fpr, tpr, thresholds, valid),
        "auc": jl.roc_auc(probs, y),
        "ap": jl.average_precision(probs, y),
        "accuracy": jl.accuracy(predicted, y),
        "prf": jl.precision_recall_fscore(confusion, average="binary", pos_label=1),
    }


def main() -> None:
    x_train, y_train, x_test, y_test = load_split()
    params = train(x_train, y_train)
    out = evaluate(params, x_test, y_test)
    probs = np.asarray(out["probs"])
    fpr, tpr, thresholds, valid = (np.asarray(a) for a in out["curve"])
    fpr, tpr, thresholds = fpr[valid], tpr[valid], thresholds[valid]

    n_pos, n_neg = int(y_test.sum()), int((1 - y_test).sum())
    print(f"breast cancer, test split: {len(y_test)} examples ({n_pos} malignant, {n_neg} benign)")
    print(
        f"ROC AUC            {float(out['auc']):.4f}   "
        f"(scikit-learn: {roc_auc_score(y_test, probs):.4f})"
    )
    print(
        f"average precision  {float(out['ap']):.4f}   "
        f"(scikit-learn: {average_precision_score(y_test, probs):.4f})"
    )
    prf = out["prf"]
    print(
        f"at p >= 0.5: accuracy {float(out['accuracy']):.4f}, precision "
        f"{float(prf.precision):.4f}, recall {float(prf.recall):.4f}, F1 {float(prf.fscore):.4f}"
    )
    print(f"ROC curve: {len(fpr)} valid points of {len(valid)} (static size N + 1)")
    print()
    print("what moving the threshold trades (call malignant when p >= t):")
    print("     t   recall (TPR)   false alarms (FPR)   missed malignant   false alarms")
    annotated = []
    for t in THRESHOLDS:
        i = int(np.searchsorted(-thresholds, -t, side="right")) - 1  # lowest threshold >= t
        annotated.append((t, fpr[i], tpr[i]))
        missed = round((1 - tpr[i]) * n_pos)
        alarms = round(fpr[i] * n_neg)
        print(f"  {t:4.2f}   {tpr[i]:12.3f}   {fpr[i]:18.3f}   {missed:16d}   {alarms:12d}")

    os.makedirs(OUTPUT, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot(
        fpr,
        tpr,
        drawstyle="default",
        lw=2,
        label=f"logistic regression (AUC = {float(out['auc']):.3f})",
    )
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="chance")
    # A good classifier crowds its thresholds into the top-left corner: put the labels in a
    # column and draw a line to each point.
    for j, (t, f, r) in enumerate(annotated):
        ax.plot(f, r, "o", c="C3")
        ax.annotate(
            f"p ≥ {t:g}: TPR {r:.2f}, FPR {f:.2f}",
            (f, r),
            xytext=(0.25, 0.82 - 0.09 * j),
            fontsize=9,
            ha="left",
            va="center",
            arrowprops={"arrowstyle": "-", "color": "C3", "lw": 0.6, "relpos": (0.0, 0.5)},
        )
    ax.set_xlim(-0.02, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("false positive rate (benign called malignant)")
    ax.set_ylabel("true positive rate (malignant found)")
    ax.set_title("ROC curve, breast-cancer test split (jaxloss.roc_curve)")
    ax.legend(loc="lower right")
    path = os.path.join(OUTPUT, "roc_curve.png")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
