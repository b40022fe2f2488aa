"""Quickstart: class-weighted cross-entropy on a deliberately imbalanced digits split.

A small MLP is trained on scikit-learn's bundled ``load_digits`` inside an ordinary optax step,
once with the plain cross-entropy and once with jaxloss's class-weighted cross-entropy
(``class_weights=`` balanced weights, ``reduction="weighted_mean"``: PyTorch's weighted mean).
The training split keeps every example of digits 0–4 but only a handful of digits 5–9; the test
split stays balanced. The script prints per-class recall for both runs and writes a bar chart to
``examples/output/quickstart_recall.png``.

Run it with ``make demo`` (or ``.venv/bin/python examples/quickstart.py``).
"""

from __future__ import annotations

import itertools
import pathlib
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm

import jaxloss as jl

matplotlib.use("Agg")
import matplotlib.pyplot as plt

OUTPUT = pathlib.Path(__file__).resolve().parent / "output"
MINORITY = (5, 6, 7, 8, 9)
MINORITY_KEPT = 3  # training examples kept per minority class
STEPS = 400
SEED = 0


def imbalanced_split():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, stratify=y, random_state=SEED
    )
    rng = np.random.RandomState(SEED)
    keep = np.ones(len(y_train), bool)
    for c in MINORITY:
        idx = np.flatnonzero(y_train == c)
        keep[rng.choice(idx, size=len(idx) - MINORITY_KEPT, replace=False)] = False
    return x_train[keep], y_train[keep], x_test, y_test


def init_mlp(key, sizes=(64, 64, 10)):
    params = []
    keys = jax.random.split(key, len(sizes) - 1)
    for k, (n_in, n_out) in zip(keys, itertools.pairwise(sizes), strict=True):
        w = jax.random.normal(k, (n_in, n_out)) * jnp.sqrt(2.0 / n_in)
        params.append((w, jnp.zeros(n_out)))
    return params


def mlp(params, x):
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def train(x, y, class_weights, label):
    """Full-batch Adam; ``class_weights=None`` is the plain cross-entropy."""
    optimizer = optax.adamw(1e-2, weight_decay=1e-4)

    def loss_fn(params):
        return jl.softmax_cross_entropy_with_integer_labels(
            mlp(params, x), y, class_weights=class_weights, reduction="weighted_mean"
        )

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    params = init_mlp(jax.random.PRNGKey(SEED))
    opt_state = optimizer.init(params)
    with tqdm(range(STEPS), desc=f"{label:>14}", ncols=80) as bar:
        for i in bar:
            params, opt_state, loss = step(params, opt_state)
            if i % 50 == 0 or i == STEPS - 1:
                bar.set_postfix(loss=f"{float(loss):.4f}")
    return params


def per_class_recall(params, x, y, num_classes=10):
    predicted = np.asarray(jnp.argmax(mlp(params, x), axis=-1))
    return np.array([(predicted[y == c] == c).mean() for c in range(num_classes)])


def main():
    start = time.perf_counter()
    x_train, y_train, x_test, y_test = imbalanced_split()
    counts = np.bincount(y_train, minlength=10)
    print("training examples per class:", dict(enumerate(counts.tolist())))
    # scikit-learn's "balanced" weights: n_samples / (n_classes · count_c).
    balanced = (len(y_train) / (10 * counts)).astype(np.float32)
    print("class weights (balanced):   ", [round(float(v), 2) for v in balanced])

    runs = {
        "plain CE": train(x_train, y_train, None, "plain CE"),
        "class-weighted": train(x_train, y_train, jnp.asarray(balanced), "class-weighted"),
    }
    recalls = {name: per_class_recall(p, x_test, y_test) for name, p in runs.items()}

    print("\nper-class recall on the balanced test split")
    print(f"{'digit':<15}" + "".join(f"{c:>6d}" for c in range(10)) + "   rare 5-9   all")
    for name, r in recalls.items():
        print(
            f"{name:<15}"
            + "".join(f"{v:6.2f}" for v in r)
            + f"   {r[list(MINORITY)].mean():8.3f}   {r.mean():.3f}"
        )
    gain = (
        recalls["class-weighted"][list(MINORITY)].mean()
        - recalls["plain CE"][list(MINORITY)].mean()
    )
    print(f"\nclass weights change the mean recall of the rare digits 5-9 by {gain:+.3f}")

    OUTPUT.mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4.2))
    width = 0.4
    for i, (name, r) in enumerate(recalls.items()):
        ax.bar(np.arange(10) + (i - 0.5) * width, r, width, label=name)
    ax.axvspan(4.5, 9.5, color="grey", alpha=0.12, label=f"rare in training ({MINORITY_KEPT} each)")
    ax.set(
        xlabel="digit",
        ylabel="test recall",
        xticks=range(10),
        ylim=(0, 1.05),
        title="Imbalanced digits: plain vs class-weighted cross-entropy",
    )
    # Below the axes, so that it covers no bar.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8)
    fig.tight_layout()
    path = OUTPUT / "quickstart_recall.png"
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
