"""Write PyTorch's own numbers for ``jaxloss.compat.torch`` to ``functional.json``.

Run with PyTorch installed (``pip install torch==2.13.0``, a CPU build, is enough)::

    python tests/torch_reference/generate.py

Each case records the inputs, the keyword arguments, and for every reduction PyTorch's value
and its gradient with respect to each floating-point input (of the summed output for
``"none"``). ``tests/test_compat_torch.py`` replays the cases against ``jaxloss.compat.torch``
without needing PyTorch. Inputs are drawn from a fixed NumPy seed; the file is the reference,
so regenerating it is only needed when cases are added.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).with_name("functional.json")
REDUCTIONS = ("none", "mean", "sum")


def _cases(rng: np.random.Generator) -> list[dict]:
    f32 = np.float32
    n, c = 5, 4

    def normal(*shape, scale=1.0):
        return (rng.normal(size=shape) * scale).astype(f32)

    def probs(*shape):
        return rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]).astype(f32)

    def pm1(*shape):
        return np.where(rng.random(shape) > 0.5, 1.0, -1.0).astype(f32)

    labels = rng.integers(0, c, size=n)
    labels_ignored = labels.copy()
    labels_ignored[[1, 3]] = -100
    seg_labels = rng.integers(0, c, size=(2, 3, 3))
    seg_labels[0, 0, :2] = -100
    seg_labels_one_ignored = np.where(seg_labels == -100, 1, seg_labels)
    weight = rng.uniform(0.2, 2.0, size=c).astype(f32)
    multilabel_targets = np.array(
        [[3, 0, -1, 1], [1, -1, 2, 2], [0, 1, 2, 3], [-1, 0, 0, 0], [2, 1, -1, 0]]
    )
    ctc_log_probs = np.log(probs(6, 3, 5)).astype(f32)
    return [
        # name, kwargs, float inputs (differentiated), other inputs (in call order after them)
        dict(fn="cross_entropy", floats=[normal(n, c, scale=2)], ints=[labels_ignored], kw={}),
        dict(
            fn="cross_entropy",
            floats=[normal(n, c, scale=2)],
            ints=[labels_ignored],
            kw=dict(weight=weight, label_smoothing=0.2),
        ),
        dict(fn="cross_entropy", floats=[normal(2, c, 3, 3)], ints=[seg_labels], kw={}),
        dict(
            fn="cross_entropy",
            floats=[normal(2, c, 3, 3)],
            ints=[seg_labels_one_ignored],
            kw=dict(weight=weight, ignore_index=1),
        ),
        dict(
            fn="cross_entropy",
            floats=[normal(n, c), probs(n, c)],
            ints=[],
            kw=dict(weight=weight, label_smoothing=0.1),
        ),
        dict(fn="nll_loss", floats=[np.log(probs(n, c))], ints=[labels_ignored], kw={}),
        dict(
            fn="nll_loss",
            floats=[np.log(probs(2, c, 3, 3))],
            ints=[seg_labels],
            kw=dict(weight=weight),
        ),
        dict(
            fn="binary_cross_entropy",
            floats=[probs(n, c), probs(n, c)],
            ints=[],
            kw=dict(weight=normal(n, 1) ** 2),
        ),
        dict(
            fn="binary_cross_entropy",  # exact 0 and 1: the logs are clamped at -100
            floats=[np.array([0.0, 1.0, 0.3, 0.0, 1.0], f32), np.array([1, 0, 1, 0, 1], f32)],
            ints=[],
            kw={},
            values_only=True,
        ),
        dict(
            fn="gaussian_nll_loss",
            floats=[normal(n, c), normal(n, c)],
            ints=[],
            extra=[np.abs(normal(n)) + 0.1],  # one variance per example, PyTorch's [N]
            kw={},
        ),
        dict(
            fn="gaussian_nll_loss",
            floats=[normal(n, c), normal(n, c)],
            ints=[],
            extra=[np.abs(normal(n, c)) * 1e-3],  # some below eps: clamped
            kw=dict(full=True, eps=1e-4),
        ),
        dict(
            fn="binary_cross_entropy_with_logits",
            floats=[normal(n, c, scale=3), probs(n, c)],
            ints=[],
            kw=dict(weight=normal(c) ** 2, pos_weight=np.abs(normal(c)) + 0.5),
        ),
        dict(fn="mse_loss", floats=[normal(n, c), normal(n, c)], ints=[], kw={}),
        dict(fn="l1_loss", floats=[normal(n, c), normal(n, c)], ints=[], kw={}),
        dict(fn="smooth_l1_loss", floats=[normal(n, c), normal(n, c)], ints=[], kw=dict(beta=0.5)),
        dict(
            fn="huber_loss",
            floats=[normal(n, c, scale=2), normal(n, c)],
            ints=[],
            kw=dict(delta=0.7),
        ),
        dict(fn="kl_div", floats=[np.log(probs(n, c)), probs(n, c)], ints=[], kw={}),
        dict(
            fn="kl_div",
            floats=[np.log(probs(n, c)), np.log(probs(n, c))],
            ints=[],
            kw=dict(log_target=True),
            reductions=("none", "mean", "sum", "batchmean"),
        ),
        dict(
            fn="poisson_nll_loss",
            floats=[normal(n, c)],
            ints=[],
            extra=[rng.poisson(2.0, size=(n, c)).astype(f32)],
            kw={},
        ),
        dict(
            fn="poisson_nll_loss",
            floats=[np.abs(normal(n, c)) + 0.1],
            ints=[],
            extra=[rng.poisson(3.0, size=(n, c)).astype(f32)],
            kw=dict(log_input=False, full=True),
        ),
        dict(
            fn="margin_ranking_loss",
            floats=[normal(n), normal(n)],
            ints=[],
            extra=[pm1(n)],
            kw=dict(margin=0.3),
        ),
        dict(
            fn="hinge_embedding_loss",
            floats=[np.abs(normal(n, c)) * 2],
            ints=[],
            extra=[pm1(n, c)],
            kw=dict(margin=1.5),
        ),
        dict(
            fn="cosine_embedding_loss",
            floats=[normal(n, c), normal(n, c)],
            ints=[],
            extra=[pm1(n)],
            kw=dict(margin=0.2),
        ),
        dict(
            fn="soft_margin_loss", floats=[normal(n, c, scale=2)], ints=[], extra=[pm1(n, c)], kw={}
        ),
        dict(
            fn="multilabel_soft_margin_loss",
            floats=[normal(n, c, scale=2)],
            ints=[],
            extra=[(rng.random((n, c)) > 0.5).astype(f32)],
            kw=dict(weight=weight),
        ),
        dict(fn="multilabel_margin_loss", floats=[normal(n, c)], ints=[multilabel_targets], kw={}),
        dict(fn="multi_margin_loss", floats=[normal(n, c)], ints=[labels], kw={}),
        dict(
            fn="multi_margin_loss",
            floats=[normal(n, c)],
            ints=[labels],
            kw=dict(p=2, margin=0.7, weight=weight),
        ),
        dict(
            fn="ctc_loss",
            floats=[ctc_log_probs],
            ints=[
                np.array([[1, 2, 2, 0], [3, 3, 4, 0], [1, 1, 1, 1]]),
                np.array([6, 5, 6]),
                np.array([3, 2, 4]),
            ],
            kw={},
        ),
        dict(
            fn="ctc_loss",
            floats=[ctc_log_probs],
            ints=[
                np.array([[1, 2, 2, 0], [3, 3, 4, 0], [1, 1, 1, 1]]),
                np.array([6, 3, 6]),
                np.array([3, 3, 4]),
            ],
            kw=dict(zero_infinity=True),
        ),
        # (Appended last, so the draws of the cases above are unchanged.)
        dict(
            fn="triplet_margin_loss",
            floats=[normal(n, c), normal(n, c), normal(n, c)],
            ints=[],
            kw={},
        ),
        dict(
            fn="triplet_margin_loss",  # the distance swap; an L1 distance; eps on the difference
            floats=[normal(n, c), normal(n, c), normal(n, c, scale=0.5)],
            ints=[],
            kw=dict(margin=0.5, p=1.0, eps=1e-3, swap=True),
        ),
        dict(
            fn="triplet_margin_loss",
            floats=[normal(n, c), normal(n, c), normal(n, c)],
            ints=[],
            kw=dict(margin=2.0, p=3.0, swap=True),
        ),
    ]


def _call(case: dict, reduction: str) -> tuple[np.ndarray, list[np.ndarray]]:
    floats = [torch.tensor(a, requires_grad=True) for a in case["floats"]]
    args = list(floats)
    args += [torch.tensor(a) for a in case.get("extra", [])]
    args += [torch.tensor(a) for a in case["ints"]]
    kw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in case["kw"].items()}
    out = getattr(F, case["fn"])(*args, reduction=reduction, **kw)
    out.sum().backward()
    return out.detach().numpy(), [f.grad.numpy() for f in floats]


def main() -> None:
    rng = np.random.default_rng(20261201)
    records = []
    for case in _cases(rng):
        results = {}
        for reduction in case.get("reductions", REDUCTIONS):
            value, grads = _call(case, reduction)
            results[reduction] = dict(value=value.tolist(), grads=[g.tolist() for g in grads])
        records.append(
            dict(
                fn=case["fn"],
                floats=[a.tolist() for a in case["floats"]],
                extra=[a.tolist() for a in case.get("extra", [])],
                ints=[a.tolist() for a in case["ints"]],
                kw={
                    k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in case["kw"].items()
                },
                values_only=case.get("values_only", False),
                results=results,
            )
        )
    meta = dict(torch=torch.__version__, note="generated by tests/torch_reference/generate.py")
    OUT.write_text(json.dumps(dict(meta=meta, cases=records), indent=None) + "\n")
    print(f"wrote {len(records)} cases to {OUT}")


if __name__ == "__main__":
    main()
