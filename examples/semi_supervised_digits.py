"""Few-label digits: jaxloss's semi-supervised objectives against a supervised-only MLP.

Protocol (fixed, so results compare): ``X = load_digits().data / 16``,
``train_test_split(test_size=0.3, stratify=y, random_state=0)`` (1257 train / 540 test);
``np.random.RandomState(seed)`` picks 5 (and 10) labeled examples per class from the training
split; every other training example is unlabeled (label -1). Test accuracy, mean ± std over
seeds 0–4. Labels of unlabeled and test points are never used; test inputs are never used for
training either (the unlabeled pool is the training split only).

Every network method trains the same MLP (64-128-128-10, ReLU; dropout 0.2 except in the best
combination) with Adam for the same number of steps; each step sees all labeled examples
(padded to a fixed size with label -1) and a batch of unlabeled ones in *one* batch whose
unlabeled rows carry label -1, so the supervised term is simply
``softmax_cross_entropy_with_integer_labels(..., ignore_index=-1, reduction="mean")``
(``show_unlabeled_rows_are_left_out`` checks it equals the mean over the labeled rows, as do
all-zero one-hot rows with ``softmax_cross_entropy``; optax averages in the last class's loss).
The 5 seeds × 2 label budgets of one method run as one ``vmap``-ed, jitted training.

Methods (unsupervised weights ramped with ``sigmoid_rampup``):

* supervised only;
* Pseudo-Label / FixMatch: ``pseudo_label_loss`` (τ = 0.9), weak view = clean input, strong
  view = one-pixel shift + Gaussian noise + input dropout (``jaxloss.dropout``);
* consistency: ``consistency_loss(kind="kl")``, UDA-style, from the clean view (teacher, under
  ``stop_gradient``) to a shifted, noisy, dropped-out view;
* VAT: ``vat_loss`` (ε = 0.5; the best combination uses ε = 2 with its other terms);
* entropy minimisation: ``entropy_loss``;
* ``label_spreading`` alone (α = 0.9, γ = 30 / median d²) on the RBF graph, and on a
  shift-tolerant graph (d² = min over one-pixel shifts); test points are labeled inductively,
  as scikit-learn's ``predict`` does;
* the best combination: the shift-tolerant ``label_spreading`` distributions are soft
  pseudo-labels (``pseudo_label_loss(log F, logits, hard=False, threshold=0)``) for a network
  also trained with VAT, entropy minimisation and one-pixel-shift augmentation; its EMA
  weights predict the test set averaged over the 9 one-pixel shifts, and that prediction is
  averaged with label spreading's own test distribution.

Run ``python examples/semi_supervised_digits.py`` (the full benchmark: prints the table and
writes ``examples/output/semi_supervised_digits.png``; ``--write-results`` also rewrites the
committed ``bench/results/semi_supervised_digits.md``) or ``--quick`` (3 seeds, 5 labels per
class, 300 steps, three methods; for CI).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import jaxloss as jl

ROOT = Path(__file__).resolve().parents[1]
NUM_CLASSES = 10
HIDDEN = 128

# Per-method settings. Weights of the unsupervised terms ramp up with sigmoid_rampup.
METHODS: dict[str, dict[str, Any]] = {
    "supervised only": {},
    "pseudo-label / FixMatch": {"fixmatch": 1.0, "threshold": 0.9},
    "consistency (UDA-style KL)": {"consistency": 1.0},
    "VAT": {"vat": 1.0, "epsilon": 0.5},
    "entropy minimisation": {"entropy": 1.0},
    "best: LS pseudo-labels + VAT + entropy + shifts + EMA, ensembled with LS": {
        "spread": 1.0,
        "vat": 1.0,
        "epsilon": 2.0,
        "vat_shift": 0.0,
        "entropy": 1.0,
        "shift": 0.5,
        "eval_ema": True,
        "test_shifts": True,
        "ensemble": True,
        "dropout": 0.0,
        "unlabeled_batch": 256,
        "final_lr": 1.0,
    },
}
LS_RBF = "label_spreading (RBF graph, gamma_scale=30)"
LS_SHIFT = "label_spreading (shift-tolerant graph)"
LS_GAMMA_SCALE, LS_ALPHA = 30.0, 0.9


# ---------------------------------------------------------------------------------------------
# Data


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, stratify=y, random_state=0
    )
    return x_train, x_test, y_train.astype(np.int32), y_test.astype(np.int32)


def pick_labels(y_train: np.ndarray, seed: int, per_class: int) -> np.ndarray:
    """The protocol: RandomState(seed) picks ``per_class`` labeled examples per class."""
    rng = np.random.RandomState(seed)
    idx = np.concatenate(
        [
            rng.choice(np.flatnonzero(y_train == c), per_class, replace=False)
            for c in range(NUM_CLASSES)
        ]
    )
    labels = np.full(len(y_train), -1, np.int32)
    labels[idx] = y_train[idx]
    return labels


def shifted_copies(x: np.ndarray) -> np.ndarray:
    """The 9 copies of each 8×8 image shifted by at most one pixel (zero fill): [9, N, 64]."""
    img = np.pad(x.reshape(-1, 8, 8), ((0, 0), (1, 1), (1, 1)))
    return np.stack(
        [
            img[:, 1 + dy : 9 + dy, 1 + dx : 9 + dx].reshape(-1, 64)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        ]
    )


def sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T, 0.0)


def shift_tolerant_sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``min`` over one-pixel shifts of either image of the squared distance (a tiny tangent
    distance): ``[len(a), len(b)]``."""
    d2 = np.min([sq_distances(c, b) for c in shifted_copies(a)], axis=0)
    return np.minimum(d2, np.min([sq_distances(a, c) for c in shifted_copies(b)], axis=0))


# ---------------------------------------------------------------------------------------------
# Model


def init_mlp(key: jax.Array, sizes: tuple[int, ...]) -> list[tuple[jax.Array, jax.Array]]:
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        (jax.random.normal(k, (a, b)) * jnp.sqrt(2.0 / a), jnp.zeros(b))
        for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def mlp(params: list, x: jax.Array, key: jax.Array | None = None, rate: float = 0.0) -> jax.Array:
    """ReLU MLP; inverted dropout (jaxloss.dropout) on hidden layers when a key is given."""
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = jax.nn.relu(h)
            if key is not None:
                h = jl.dropout(jax.random.fold_in(key, i), h, rate)
    return h


# ---------------------------------------------------------------------------------------------
# Training (one method, all seeds and label budgets at once)


def make_trainer(
    cfg: dict[str, Any],
    *,
    steps: int,
    unlabeled_batch: int,
    max_labeled: int,
    x_shifts: jax.Array,
    test_shifts: jax.Array,
) -> Callable[..., jax.Array]:
    n_train = x_shifts.shape[1]
    unlabeled_batch = cfg.get("unlabeled_batch", unlabeled_batch)
    dropout_rate = cfg.get("dropout", 0.2)
    optimizer = optax.adam(optax.cosine_decay_schedule(3e-3, steps, alpha=cfg.get("final_lr", 0.1)))
    ramp_steps = steps // 5

    def view(key: jax.Array, idx: jax.Array, shift_prob: float, noise: float = 0.0) -> jax.Array:
        """Rows ``idx`` of the training set, each shifted by ≤ 1 pixel with ``shift_prob``."""
        k_which, k_apply, k_noise = jax.random.split(key, 3)
        which = jax.random.randint(k_which, idx.shape, 0, 9)
        which = jnp.where(jax.random.uniform(k_apply, idx.shape) < shift_prob, which, 4)
        x = x_shifts[which, idx]
        return x + noise * jax.random.normal(k_noise, x.shape) if noise else x

    def loss_fn(params, key, step, labeled_idx, labels, targets):
        keys = jax.random.split(key, 8)
        unlabeled_idx = jax.random.randint(keys[0], (unlabeled_batch,), 0, n_train)
        idx = jnp.concatenate([labeled_idx, unlabeled_idx])
        # Padding rows of the labeled part carry -1 too: one mask for everything.
        y = jnp.concatenate([labels, jnp.full((unlabeled_batch,), -1, jnp.int32)])
        unlabeled = ~jl.labeled_mask(y)
        x = view(keys[1], idx, cfg.get("shift", 0.0))
        logits = mlp(params, x, keys[2], dropout_rate)
        loss = jl.softmax_cross_entropy_with_integer_labels(
            logits, y, ignore_index=-1, reduction="mean"
        )
        ramp = jl.sigmoid_rampup(step, ramp_steps)
        if cfg.get("entropy"):
            loss += (
                cfg["entropy"] * ramp * jl.entropy_loss(logits, where=unlabeled, reduction="mean")
            )
        if cfg.get("vat"):
            clean = view(keys[3], idx, cfg.get("vat_shift", cfg.get("shift", 0.0)))
            loss += (
                cfg["vat"]
                * ramp
                * jl.vat_loss(
                    mlp,
                    params,
                    clean,
                    keys[4],
                    epsilon=cfg["epsilon"],
                    where=unlabeled,
                    reduction="mean",
                )
            )
        if cfg.get("fixmatch"):
            weak = mlp(params, view(keys[3], idx, 0.0))
            strong_x = jl.dropout(keys[4], view(keys[5], idx, 1.0, noise=0.1), 0.2)
            strong = mlp(params, strong_x, keys[6], dropout_rate)
            pl, _ = jl.pseudo_label_loss(
                weak, strong, threshold=cfg["threshold"], where=unlabeled, reduction="mean"
            )
            loss += cfg["fixmatch"] * ramp * pl
        if cfg.get("consistency"):
            # Teacher: the clean input, no dropout, under stop_gradient; student: a noisy view.
            teacher = mlp(params, view(keys[3], idx, 0.0))
            student = mlp(params, view(keys[5], idx, 1.0, noise=0.1), keys[6], dropout_rate)
            loss += (
                cfg["consistency"]
                * ramp
                * jl.consistency_loss(
                    student, teacher, kind="kl", where=unlabeled, reduction="mean"
                )
            )
        if cfg.get("spread"):
            # Soft targets from label spreading: its log-distributions play the weak logits.
            pl, _ = jl.pseudo_label_loss(
                targets[idx], logits, threshold=0.0, hard=False, where=unlabeled, reduction="mean"
            )
            loss += cfg["spread"] * pl
        return loss

    def train(key, labeled_idx, labels, targets):
        params = init_mlp(key, (64, HIDDEN, HIDDEN, NUM_CLASSES))
        opt_state = optimizer.init(params)

        def step_fn(carry, step):
            params, ema, opt_state, key = carry
            key, sub = jax.random.split(key)
            grads = jax.grad(loss_fn)(params, sub, step, labeled_idx, labels, targets)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            ema = jax.tree.map(lambda e, p: 0.99 * e + 0.01 * p, ema, params)
            return (params, ema, opt_state, key), None

        (params, ema, _, _), _ = jax.lax.scan(
            step_fn, (params, params, opt_state, key), jnp.arange(steps)
        )
        final = ema if cfg.get("eval_ema") else params
        if cfg.get("test_shifts"):  # average the predictions over the 9 one-pixel shifts
            return jnp.mean(jax.nn.softmax(mlp(final, test_shifts)), axis=0)
        return jax.nn.softmax(mlp(final, test_shifts[4]))

    return jax.jit(jax.vmap(train))


# ---------------------------------------------------------------------------------------------
# Label spreading


def spread_distributions(affinity: jax.Array, labels: np.ndarray, alpha: float) -> jax.Array:
    """``label_spreading`` for every (seed, budget) row of ``labels`` at once (closed form)."""
    fn = jax.jit(
        jax.vmap(
            lambda a, lab: jl.label_spreading(
                a, lab, kernel="precomputed", alpha=alpha, num_classes=NUM_CLASSES, method="solve"
            ),
            in_axes=(None, 0),
        )
    )
    return fn(affinity, jnp.asarray(labels))


def label_spreading_fit(
    d2_train: np.ndarray, d2_test: np.ndarray, labels: np.ndarray
) -> tuple[jax.Array, jax.Array]:
    """``label_spreading`` on the training split's RBF graph ``exp(-γ d²)`` with
    ``γ = LS_GAMMA_SCALE / median d²`` (the library's ``gamma_scale``, here for any distance).

    Returns the training distributions ``[R, N, C]`` and the test distributions ``[R, T, C]``:
    a test point gets ``Σ_j k(t, x_j) F_j`` normalised (scikit-learn's ``predict_proba``), the
    kernel row shifted by its maximum (log domain) so that it cannot underflow.
    """
    gamma = LS_GAMMA_SCALE / np.median(d2_train[np.triu_indices(len(d2_train), 1)])
    affinity = jnp.asarray(np.exp(-gamma * d2_train), jnp.float32)
    dist = spread_distributions(affinity, labels, alpha=LS_ALPHA)
    log_k = -gamma * d2_test
    k = jnp.asarray(np.exp(log_k - log_k.max(axis=1, keepdims=True)), jnp.float32)
    test = jnp.einsum("tn,snc->stc", k, dist)
    return dist, test / jnp.maximum(test.sum(-1, keepdims=True), 1e-30)


# ---------------------------------------------------------------------------------------------
# The benchmark


REFERENCES = {  # measured by the author on this protocol (5 / 10 labels per class)
    "logistic regression, labels only": (0.860, 0.903),
    "scikit-learn LabelSpreading": (0.935, 0.959),
    "plain JAX VAT": (0.964, 0.969),
}


def show_unlabeled_rows_are_left_out() -> None:
    """label -1 and all-zero one-hot rows: no supervised signal, out of the mean."""
    logits = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [0.0, 1.0, 0.0]])
    labels = jnp.array([0, -1, 1])
    rows = jax.nn.one_hot(labels, 3)  # -1 → an all-zero row
    by_index = jl.softmax_cross_entropy_with_integer_labels(
        logits, labels, ignore_index=-1, reduction="mean"
    )
    by_rows = jl.softmax_cross_entropy(logits, rows, reduction="mean")
    labeled_only = jl.softmax_cross_entropy_with_integer_labels(
        logits[::2], labels[::2], reduction="mean"
    )
    optax_trap = optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    print(
        f"supervised loss, label -1: {float(by_index):.4f}   zero rows: {float(by_rows):.4f}   "
        f"labeled rows only: {float(labeled_only):.4f}   (optax with -1: {float(optax_trap):.4f}"
        ", the last class's loss averaged in)"
    )
    assert np.allclose([by_index, by_rows], labeled_only, rtol=1e-6)


def run_benchmark(
    *,
    seeds: tuple[int, ...],
    budgets: tuple[int, ...],
    steps: int,
    unlabeled_batch: int,
    methods: dict[str, dict[str, Any]],
    label_spreading: bool = True,
) -> tuple[dict[str, dict[int, np.ndarray]], dict[str, float]]:
    x_train, x_test, y_train, y_test = load()
    runs = [(seed, budget) for budget in budgets for seed in seeds]
    labels = np.stack([pick_labels(y_train, s, b) for s, b in runs])  # [R, N]
    max_labeled = NUM_CLASSES * max(budgets)
    labeled_idx = np.zeros((len(runs), max_labeled), np.int32)
    labeled_y = np.full((len(runs), max_labeled), -1, np.int32)  # padding: -1
    for r, lab in enumerate(labels):
        idx = np.flatnonzero(lab >= 0)
        labeled_idx[r, : len(idx)] = idx
        labeled_y[r, : len(idx)] = lab[idx]

    def split(acc: np.ndarray) -> dict[int, np.ndarray]:
        return {
            b: np.asarray([a for a, (_, rb) in zip(acc, runs, strict=True) if rb == b])
            for b in budgets
        }

    results: dict[str, dict[int, np.ndarray]] = {}
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    d2 = {
        "rbf": (sq_distances(x_train, x_train), sq_distances(x_test, x_train)),
        "shift": (
            shift_tolerant_sq_distances(x_train, x_train),
            shift_tolerant_sq_distances(x_test, x_train),
        ),
    }
    for d2_train, _ in d2.values():
        np.fill_diagonal(d2_train, 0.0)
    seconds["(distances)"] = time.perf_counter() - start
    for name, kind in ((LS_RBF, "rbf"), (LS_SHIFT, "shift")):
        start = time.perf_counter()
        train_dist, test_dist = label_spreading_fit(*d2[kind], labels)
        if label_spreading:
            results[name] = split((np.asarray(test_dist).argmax(-1) == y_test).mean(axis=1))
            seconds[name] = time.perf_counter() - start
            report(name, results[name], seconds[name])
    # The shift-tolerant graph's distributions: soft pseudo-labels of the training split (as
    # logits for pseudo_label_loss) and, for "ensemble", its test predictions.
    targets = jnp.log(jnp.maximum(train_dist, 1e-30))
    spread_test = np.asarray(test_dist)

    x_shifts = jnp.asarray(shifted_copies(x_train))
    keys = jax.vmap(jax.random.key)(jnp.asarray([s for s, _ in runs]))
    for name, cfg in methods.items():
        start = time.perf_counter()
        trainer = make_trainer(
            cfg,
            steps=steps,
            unlabeled_batch=unlabeled_batch,
            max_labeled=max_labeled,
            x_shifts=x_shifts,
            test_shifts=jnp.asarray(shifted_copies(x_test)),
        )
        probs = np.asarray(trainer(keys, jnp.asarray(labeled_idx), jnp.asarray(labeled_y), targets))
        if cfg.get("ensemble"):  # average with label spreading's test distributions
            probs = 0.5 * (probs + spread_test)
        results[name] = split((probs.argmax(-1) == y_test).mean(axis=1))
        seconds[name] = time.perf_counter() - start
        report(name, results[name], seconds[name])
    return results, seconds


def report(name: str, accs: dict[int, np.ndarray], seconds: float) -> None:
    cells = "   ".join(f"{b}/class {a.mean():.3f} ± {a.std():.3f}" for b, a in accs.items())
    print(f"  {name:<55} {cells}   [{seconds:.0f} s]", flush=True)


def table(results: dict[str, dict[int, np.ndarray]], budgets: tuple[int, ...]) -> str:
    head = "| method | " + " | ".join(f"{b} labels/class" for b in budgets) + " |"
    lines = [head, "|" + " --- |" * (len(budgets) + 1)]
    for name, accs in results.items():
        cells = " | ".join(f"{accs[b].mean():.3f} ± {accs[b].std():.3f}" for b in budgets)
        lines.append(f"| {name} | {cells} |")
    for name, ref in REFERENCES.items():
        cells = " | ".join(f"{ref[(5, 10).index(b)]:.3f}" if b in (5, 10) else "" for b in budgets)
        lines.append(f"| *reference: {name}* | {cells} |")
    return "\n".join(lines)


def plot(
    results: dict[str, dict[int, np.ndarray]],
    budgets: tuple[int, ...],
    path: Path,
    *,
    seeds: int,
    steps: int,
    quick: bool,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(12, 4.8))
    width = 0.8 / len(budgets)
    for j, b in enumerate(budgets):
        means = [results[n][b].mean() for n in names]
        stds = [results[n][b].std() for n in names]
        ax.bar(
            np.arange(len(names)) + j * width,
            means,
            width,
            yerr=stds,
            capsize=3,
            label=f"{b} labels/class",
        )
    ax.axhline(0.970, color="k", ls="--", lw=0.8, label="target 0.970 (5 labels/class)")
    ax.set_xticks(np.arange(len(names)) + width * (len(budgets) - 1) / 2)
    ax.set_xticklabels(
        [n.split(":")[0] if n.startswith("best") else n for n in names],
        rotation=20,
        ha="right",
        fontsize=8,
    )
    ax.set_ylim(0.8, 1.0)
    ax.set_ylabel(f"test accuracy (mean ± std, {seeds} seeds)")
    run = f"--quick: {seeds} seeds, {steps} steps" if quick else f"{seeds} seeds, {steps} steps"
    ax.set_title(f"Digits with few labels: jaxloss semi-supervised objectives ({run})")
    # Right of the axes, so that it covers no bar.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, dict[int, np.ndarray]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI mode: 3 seeds, 5 labels/class, fewer steps, no results file",
    )
    parser.add_argument("--steps", type=int, default=None, help="training steps per run")
    parser.add_argument(
        "--results",
        type=Path,
        default=ROOT / "bench" / "results" / "semi_supervised_digits.md",
        help="where --write-results writes the markdown table",
    )
    parser.add_argument(
        "--write-results",
        action="store_true",
        help="write the results file (the tracked bench/results/semi_supervised_digits.md); "
        "by default the run only prints and plots",
    )
    parser.add_argument(
        "--only", default=None, help="run only the methods whose name contains this text"
    )
    parser.add_argument(
        "--png", type=Path, default=ROOT / "examples" / "output" / "semi_supervised_digits.png"
    )
    args = parser.parse_args(argv)

    if args.quick:
        seeds, budgets, steps, batch = (0, 1, 2), (5,), args.steps or 300, 128
        methods = {k: METHODS[k] for k in ("supervised only", "VAT")}
        methods["best"] = METHODS[next(k for k in METHODS if k.startswith("best"))]
    else:
        seeds, budgets, steps, batch = (0, 1, 2, 3, 4), (5, 10), args.steps or 800, 128
        methods = METHODS

    if args.only:
        methods = {k: v for k, v in methods.items() if args.only in k}
    show_unlabeled_rows_are_left_out()
    load_before = os.getloadavg()
    start, cpu_start = time.perf_counter(), time.process_time()
    results, seconds = run_benchmark(
        seeds=seeds,
        budgets=budgets,
        steps=steps,
        unlabeled_batch=batch,
        methods=methods,
        label_spreading=args.only is None,
    )
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    load_after = os.getloadavg()
    text = table(results, budgets)
    print()
    print(text)
    print(
        f"\nwall time {wall:.0f} s, CPU time of this process {cpu:.0f} s ({steps} steps per "
        f"run, {len(seeds)} seeds); load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after on {os.cpu_count()} CPUs"
    )
    plot(results, budgets, args.png, seeds=len(seeds), steps=steps, quick=args.quick)
    print(f"wrote {args.png}")
    if args.write_results and not args.quick:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        timing = "\n".join(f"| {k} | {v:.0f} |" for k, v in seconds.items())
        args.results.write_text(
            "# Few-label digits (examples/semi_supervised_digits.py)\n\n"
            "Protocol: `load_digits().data / 16`, `train_test_split(test_size=0.3, "
            "stratify=y, random_state=0)`; `RandomState(seed)` picks the labeled examples per "
            "class from the training split, the rest of it is unlabeled. Test accuracy, mean ± "
            f"std over seeds {', '.join(map(str, seeds))}; {steps} Adam steps per network.\n\n"
            f"{text}\n\n"
            f"Wall time of the whole benchmark: {wall:.0f} s (CPU time of the process "
            f"{cpu:.0f} s) on {platform.machine()} with "
            f"{os.cpu_count()} CPUs (load average {load_before[0]:.1f} at the start, "
            f"{load_after[0]:.1f} at the end: the machine was shared), jax {jax.__version__}.\n\n"
            "| part | seconds (incl. compilation) |\n| --- | --- |\n" + timing + "\n"
        )
        print(f"wrote {args.results}")
    return results


if __name__ == "__main__":
    main()
