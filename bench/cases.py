"""The benchmark families and their cases.

A family is a function ``family(quick) -> list[Case]``. A case builds its contenders lazily (its
arrays exist only while it runs) and names the contender its ratios refer to (``baseline``:
optax where optax has the function, otherwise the straightforward JAX formulation a user would
write). A family whose jaxloss function is not importable yet is skipped with a printed note.

Contenders, when available: ``jaxloss``; ``optax``; ``plain`` (the straightforward JAX
formulation); ``torch`` (PyTorch CPU eager, when ``torch`` is installed); and, for the
integer-label value+grad cases, ``two-pass`` (:func:`two_pass_cross_entropy`, the schedule the
bandwidth limit assumes, kept as evidence of what that schedule costs on this backend).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxloss
from bench.timing import Contender

__all__ = ["FAMILIES", "Case", "Traffic", "torch_or_none"]

SIZES = [(4096, 1000), (2048, 32000), (512, 128000)]
QUICK_SIZES = [(4096, 1000), (256, 32000)]


@dataclass
class Traffic:
    """Bytes a memory-bound case must move.

    ``min_bytes``: every input read once and every output written once (the effective-bandwidth
    numerator). ``read_bytes`` / ``read_write_bytes``: the bytes of the numerically safe two-pass
    schedule moved by read-only passes and by read+write passes; with the measured bandwidths
    they give the case's time limit ``read_bytes / read_bw + read_write_bytes / read_write_bw``.
    """

    min_bytes: int
    read_bytes: int
    read_write_bytes: int
    write: bool


@dataclass
class Case:
    family: str
    name: str
    build: Callable[[], list[Contender]]
    baseline: str
    traffic: Traffic | None = None
    quick: bool = True
    note: str = ""
    info: dict[str, Any] = field(default_factory=dict)


@functools.cache
def torch_or_none() -> Any:
    """The ``torch`` module, or ``None`` (torch is an optional contender)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _normal(shape: tuple[int, ...], scale: float = 3.0, seed: int = 0) -> np.ndarray:
    return (_rng(seed).standard_normal(shape, dtype=np.float32) * scale).astype(np.float32)


def _mean_loss(fn: Callable[..., Any], **kw: Any) -> Callable[..., Any]:
    return lambda *a: jnp.mean(fn(*a, **kw))


def _modes(fn: Callable[..., Any], grad: bool) -> Callable[..., Any]:
    return jax.value_and_grad(fn) if grad else fn


def _torch_vg(loss: Callable[..., Any], grad: bool) -> Callable[..., Any]:
    torch = torch_or_none()

    def run(x: Any, *rest: Any) -> Any:
        if grad:
            x.grad = None
            out = loss(x, *rest)
            out.backward()
            return out
        with torch.no_grad():
            return loss(x, *rest)

    return run


def _torch_tensor(a: np.ndarray, grad: bool = False, dtype: Any = None) -> Any:
    torch = torch_or_none()
    t = torch.from_numpy(np.array(a))
    if dtype is not None:
        t = t.to(dtype)
    return t.requires_grad_(grad) if grad else t


# ---------------------------------------------------------------------------------------------
# Cross-entropies.


def _ce_traffic(b: int, v: int, grad: bool, itemsize: int = 4, label_reads: int = 0) -> Traffic:
    n = b * v * itemsize
    if grad:  # forward: max pass + sum-exp pass (reads); backward: read logits, write gradient
        return Traffic(
            min_bytes=(2 + label_reads) * n,
            read_bytes=(2 + label_reads) * n,
            read_write_bytes=(2 + label_reads) * n,
            write=True,
        )
    return Traffic(
        min_bytes=(1 + label_reads) * n,
        read_bytes=(2 + label_reads) * n,
        read_write_bytes=0,
        write=False,
    )


@jax.custom_vjp
def two_pass_cross_entropy(x: Any, y: Any) -> Any:
    """Integer-label CE on the 16-bytes-per-element two-pass schedule (a reference contender).

    Forward: row max, then the sum of ``exp(x - m)`` (chunked over long rows, as jaxloss's
    forward); backward: ``g · (exp(x - lse) - onehot)`` recomputed in one read + one write.
    This is the schedule the two-pass limit assumes; it recomputes ``exp`` in the backward pass.
    """
    return _two_pass_fwd(x, y)[0]


def _two_pass_fwd(x: Any, y: Any) -> Any:
    from jaxloss._fused import logsumexp_last

    lse = jax.lax.stop_gradient(logsumexp_last(x))
    label = jnp.take_along_axis(x, y[..., None], axis=-1)[..., 0]
    return lse - label, (x, lse, y)


def _two_pass_bwd(res: Any, g: Any) -> Any:
    x, lse, y = res
    onehot = jax.lax.broadcasted_iota(jnp.int32, x.shape, x.ndim - 1) == y[..., None]
    return g[..., None] * (jnp.exp(x - lse[..., None]) - onehot.astype(x.dtype)), None


two_pass_cross_entropy.defvjp(_two_pass_fwd, _two_pass_bwd)


def _int_ce_case(b: int, v: int, grad: bool, quick: bool) -> Case:
    def build() -> list[Contender]:
        x = _normal((b, v))
        y = _rng(1).integers(0, v, b).astype(np.int32)
        xj, yj = jnp.asarray(x), jnp.asarray(y)
        jl = functools.partial(jaxloss.softmax_cross_entropy_with_integer_labels, reduction="mean")
        ox = _mean_loss(optax.losses.softmax_cross_entropy_with_integer_labels)

        def plain(x: Any, y: Any) -> Any:
            logp = jax.nn.log_softmax(x, axis=-1)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))

        out = [
            Contender("jaxloss", _modes(jl, grad), (xj, yj)),
            Contender("optax", _modes(ox, grad), (xj, yj)),
            Contender("plain", _modes(plain, grad), (xj, yj)),
        ]
        if grad:
            two = lambda x, y: jnp.mean(two_pass_cross_entropy(x, y))  # noqa: E731
            out.append(Contender("two-pass", jax.value_and_grad(two), (xj, yj)))
        torch = torch_or_none()
        if torch is not None:
            f = torch.nn.functional.cross_entropy
            out.append(
                Contender(
                    "torch",
                    _torch_vg(f, grad),
                    (_torch_tensor(x, grad), _torch_tensor(y).long()),
                    kind="torch",
                )
            )
        return out

    mode = "value+grad" if grad else "value"
    return Case(
        "ce_int",
        f"integer-label CE {mode} [{b}, {v}]",
        build,
        "optax",
        _ce_traffic(b, v, grad),
        quick=quick,
    )


def _prob_ce_case(b: int, v: int, grad: bool, quick: bool) -> Case:
    def build() -> list[Contender]:
        x = _normal((b, v))
        y = np.zeros((b, v), np.float32)
        y[np.arange(b), _rng(1).integers(0, v, b)] = 1.0
        xj, yj = jnp.asarray(x), jnp.asarray(y)
        jl = functools.partial(jaxloss.softmax_cross_entropy, reduction="mean")
        ox = _mean_loss(optax.losses.softmax_cross_entropy)

        def plain(x: Any, y: Any) -> Any:
            return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(x, axis=-1), axis=-1))

        def optax_labeled(x: Any, y: Any) -> Any:
            # optax's loss with jaxloss's "mean": all-zero label rows left out of the count.
            # The count costs one more pass over the labels than optax's own mean makes.
            per = optax.losses.softmax_cross_entropy(x, y)
            return jnp.sum(per) / jnp.maximum(jnp.sum(jnp.sum(y, axis=-1) != 0), 1)

        out = [
            Contender("jaxloss", _modes(jl, grad), (xj, yj)),
            Contender("optax", _modes(ox, grad), (xj, yj)),
            Contender("plain", _modes(plain, grad), (xj, yj)),
        ]
        if not grad:
            out.append(Contender("optax+count", optax_labeled, (xj, yj)))
        torch = torch_or_none()
        if torch is not None:
            f = torch.nn.functional.cross_entropy
            out.append(
                Contender(
                    "torch",
                    _torch_vg(f, grad),
                    (_torch_tensor(x, grad), _torch_tensor(y)),
                    kind="torch",
                )
            )
        return out

    mode = "value+grad" if grad else "value"
    note = (
        ""
        if grad
        else (
            "optax+count: optax's loss divided by the number of labeled rows (jaxloss's \"mean\", "
            "which leaves all-zero label rows out), the pass over the labels that costs"
        )
    )
    return Case(
        "ce_prob",
        f"probability-label CE {mode} [{b}, {v}]",
        build,
        "optax",
        _ce_traffic(b, v, grad, label_reads=1),
        quick=quick,
        note=note,
    )


def ce_int(quick: bool) -> list[Case]:
    sizes = QUICK_SIZES if quick else SIZES
    return [_int_ce_case(b, v, g, quick) for b, v in sizes for g in (True, False) if g or not quick]


def ce_prob(quick: bool) -> list[Case]:
    sizes = QUICK_SIZES[:1] if quick else SIZES
    return [
        _prob_ce_case(b, v, g, quick) for b, v in sizes for g in (True, False) if g or not quick
    ]


def contract(quick: bool) -> list[Case]:
    """Class weights + sample weights + an element mask, against the same loss without them."""
    sizes = [(4096, 1000)] if quick else [(4096, 1000), (2048, 32000)]
    cases = []
    for b, v in sizes:
        for labels in ("integer",) if quick else ("integer", "probability"):

            def build(b: int = b, v: int = v, labels: str = labels) -> list[Contender]:
                x = jnp.asarray(_normal((b, v)))
                yi = _rng(1).integers(0, v, b).astype(np.int32)
                if labels == "integer":
                    y = jnp.asarray(yi)
                    fn = jaxloss.softmax_cross_entropy_with_integer_labels
                    ox = optax.losses.softmax_cross_entropy_with_integer_labels
                else:
                    y = jax.nn.one_hot(yi, v)
                    fn = jaxloss.softmax_cross_entropy
                    ox = optax.losses.softmax_cross_entropy
                cw = jnp.asarray(_rng(2).uniform(0.5, 2.0, v).astype(np.float32))
                w = jnp.asarray(_rng(3).uniform(0.0, 1.0, b).astype(np.float32))
                mask = jnp.asarray(_rng(4).uniform(size=b) < 0.9)

                def full(x: Any, y: Any, cw: Any, w: Any, mask: Any) -> Any:
                    return fn(
                        x, y, class_weights=cw, weights=w, where=mask, reduction="weighted_mean"
                    )

                plain = functools.partial(fn, reduction="mean")
                return [
                    Contender("jaxloss+contract", jax.value_and_grad(full), (x, y, cw, w, mask)),
                    Contender("jaxloss", jax.value_and_grad(plain), (x, y)),
                    Contender("optax", jax.value_and_grad(_mean_loss(ox)), (x, y)),
                ]

            cases.append(
                Case(
                    "contract",
                    f"{labels}-label CE value+grad [{b}, {v}] + cw, w, where",
                    build,
                    "jaxloss",
                    note="baseline: the same jaxloss call without contract arguments",
                )
            )
    return cases


def bf16(quick: bool) -> list[Case]:
    """bfloat16 logits: time against optax's bf16, and the loss's error against float32."""
    b, v = (4096, 1000) if quick else (2048, 32000)

    def build() -> list[Contender]:
        x = jnp.asarray(_normal((b, v))).astype(jnp.bfloat16)
        y = jnp.asarray(_rng(1).integers(0, v, b).astype(np.int32))
        jl = functools.partial(jaxloss.softmax_cross_entropy_with_integer_labels, reduction="mean")
        ox = _mean_loss(optax.losses.softmax_cross_entropy_with_integer_labels)

        def upcast(x: Any, y: Any) -> Any:
            return ox(x.astype(jnp.float32), y)

        out = [
            Contender("jaxloss", jax.value_and_grad(jl), (x, y)),
            Contender("optax", jax.value_and_grad(ox), (x, y)),
            Contender("plain", jax.value_and_grad(upcast), (x, y)),
        ]
        torch = torch_or_none()
        if torch is not None:
            xt = _torch_tensor(np.asarray(x.astype(jnp.float32)), dtype=torch.bfloat16)
            out.append(
                Contender(
                    "torch",
                    _torch_vg(torch.nn.functional.cross_entropy, True),
                    (xt.requires_grad_(True), _torch_tensor(np.asarray(y)).long()),
                    kind="torch",
                )
            )
        return out

    def accuracy(contenders: dict[str, Contender]) -> dict[str, Any]:
        x, y = contenders["jaxloss"].args
        xf = np.asarray(x.astype(jnp.float32), np.float64)
        m = xf.max(axis=-1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(xf - m).sum(axis=-1))
        ref = float(np.mean(lse - xf[np.arange(len(y)), np.asarray(y)]))
        out = {"float64_reference_loss": ref}
        for name, c in contenders.items():
            val = c.fn(*c.args)[0] if c.kind == "jax" else c.fn(*c.args)
            val = float(val.float().item()) if c.kind == "torch" else float(val)
            out[f"{name}_loss"] = val
            out[f"{name}_relative_error"] = abs(val - ref) / abs(ref)
        return out

    return [
        Case(
            "bf16",
            f"integer-label CE value+grad [{b}, {v}] bfloat16",
            build,
            "optax",
            _ce_traffic(b, v, True, itemsize=2),
            info={"check": accuracy},
        )
    ]


# ---------------------------------------------------------------------------------------------
# Element-wise losses.


def sigmoid(quick: bool) -> list[Case]:
    shape = (1024, 1024) if quick else (4096, 4096)
    n = shape[0] * shape[1] * 4

    def bce_build() -> list[Contender]:
        x = _normal(shape)
        y = (_rng(1).uniform(size=shape) < 0.3).astype(np.float32)
        xj, yj = jnp.asarray(x), jnp.asarray(y)

        def plain(x: Any, y: Any) -> Any:
            return -jnp.mean(y * jax.nn.log_sigmoid(x) + (1 - y) * jax.nn.log_sigmoid(-x))

        out = [
            Contender(
                "jaxloss",
                jax.value_and_grad(
                    functools.partial(jaxloss.sigmoid_binary_cross_entropy, reduction="mean")
                ),
                (xj, yj),
            ),
            Contender(
                "optax",
                jax.value_and_grad(_mean_loss(optax.losses.sigmoid_binary_cross_entropy)),
                (xj, yj),
            ),
            Contender("plain", jax.value_and_grad(plain), (xj, yj)),
        ]
        torch = torch_or_none()
        if torch is not None:
            out.append(
                Contender(
                    "torch",
                    _torch_vg(torch.nn.functional.binary_cross_entropy_with_logits, True),
                    (_torch_tensor(x, True), _torch_tensor(y)),
                    kind="torch",
                )
            )
        return out

    def focal_build() -> list[Contender]:
        x = _normal(shape)
        y = (_rng(1).uniform(size=shape) < 0.3).astype(np.float32)
        xj, yj = jnp.asarray(x), jnp.asarray(y)

        def plain(x: Any, y: Any) -> Any:
            p = jax.nn.sigmoid(x)
            ce = -(y * jax.nn.log_sigmoid(x) + (1 - y) * jax.nn.log_sigmoid(-x))
            p_t = p * y + (1 - p) * (1 - y)
            return jnp.mean(ce * (1 - p_t) ** 2)

        out = [
            Contender(
                "jaxloss",
                jax.value_and_grad(functools.partial(jaxloss.sigmoid_focal_loss, reduction="mean")),
                (xj, yj),
            ),
            Contender(
                "optax", jax.value_and_grad(_mean_loss(optax.losses.sigmoid_focal_loss)), (xj, yj)
            ),
            Contender("plain", jax.value_and_grad(plain), (xj, yj)),
        ]
        return out

    traffic = Traffic(min_bytes=3 * n, read_bytes=0, read_write_bytes=3 * n, write=True)
    cases = [
        Case("sigmoid", f"sigmoid BCE value+grad {list(shape)}", bce_build, "optax", traffic),
        Case("sigmoid", f"sigmoid focal value+grad {list(shape)}", focal_build, "optax", traffic),
    ]
    return cases[:1] if quick else cases


def huber(quick: bool) -> list[Case]:
    fn = getattr(jaxloss, "huber_loss", None)
    if fn is None:
        return []
    shape = (1024, 1024) if quick else (4096, 4096)
    n = shape[0] * shape[1] * 4

    def build() -> list[Contender]:
        p, t = _normal(shape, seed=0), _normal(shape, seed=1)
        pj, tj = jnp.asarray(p), jnp.asarray(t)

        def plain(p: Any, t: Any) -> Any:
            d = jnp.abs(p - t)
            return jnp.mean(jnp.where(d <= 1.0, 0.5 * d**2, d - 0.5))

        jl = lambda p, t: fn(p, t, reduction="mean")  # noqa: E731
        out = [
            Contender("jaxloss", jax.value_and_grad(jl), (pj, tj)),
            Contender("optax", jax.value_and_grad(_mean_loss(optax.losses.huber_loss)), (pj, tj)),
            Contender("plain", jax.value_and_grad(plain), (pj, tj)),
        ]
        torch = torch_or_none()
        if torch is not None:
            out.append(
                Contender(
                    "torch",
                    _torch_vg(torch.nn.functional.huber_loss, True),
                    (_torch_tensor(p, True), _torch_tensor(t)),
                    kind="torch",
                )
            )
        return out

    traffic = Traffic(min_bytes=3 * n, read_bytes=0, read_write_bytes=3 * n, write=True)
    return [Case("huber", f"Huber value+grad {list(shape)}", build, "optax", traffic)]


def dice(quick: bool) -> list[Case]:
    fn = getattr(jaxloss, "dice_loss", None)
    if fn is None:
        return []
    shape = (2, 128, 128, 4) if quick else (8, 256, 256, 4)

    def build() -> list[Contender]:
        x = jnp.asarray(_normal(shape, scale=1.0))
        labels = _rng(1).integers(0, shape[-1], shape[:-1])
        y = jax.nn.one_hot(jnp.asarray(labels), shape[-1])

        def plain(x: Any, y: Any) -> Any:
            p = jax.nn.softmax(x, axis=-1)
            inter = jnp.sum(p * y, axis=(1, 2))
            card = jnp.sum(p + y, axis=(1, 2))
            return jnp.mean(1.0 - (2.0 * inter + 1.0) / (card + 1.0))

        return [
            Contender("jaxloss", jax.value_and_grad(_mean_loss(fn)), (x, y)),
            Contender("optax", jax.value_and_grad(_mean_loss(optax.losses.dice_loss)), (x, y)),
            Contender("plain", jax.value_and_grad(plain), (x, y)),
        ]

    return [Case("dice", f"Dice value+grad {list(shape)}", build, "optax")]


def dropout(quick: bool) -> list[Case]:
    fn = getattr(jaxloss, "dropout", None)
    if not callable(fn):
        return []
    shape = (1024, 1024) if quick else (4096, 4096)
    n = shape[0] * shape[1] * 4

    def build() -> list[Contender]:
        x = _normal(shape, scale=1.0)
        xj, key = jnp.asarray(x), jax.random.key(0)

        def plain(key: Any, x: Any) -> Any:
            keep = jax.random.bernoulli(key, 0.9, x.shape)
            return jnp.where(keep, x / 0.9, 0.0)

        out = [
            Contender("jaxloss", lambda k, x: fn(k, x, 0.1), (key, xj)),
            Contender("plain", plain, (key, xj)),
        ]
        torch = torch_or_none()
        if torch is not None:
            f = torch.nn.functional.dropout
            out.append(
                Contender(
                    "torch", lambda x: f(x, 0.1, training=True), (_torch_tensor(x),), kind="torch"
                )
            )
        return out

    traffic = Traffic(min_bytes=2 * n, read_bytes=0, read_write_bytes=2 * n, write=True)
    return [
        Case(
            "dropout",
            f"dropout rate 0.1 {list(shape)}",
            build,
            "plain",
            traffic,
            note="baseline: jax.random.bernoulli + where (optax has no dropout)",
        )
    ]


def per_example(quick: bool) -> list[Case]:
    fn = getattr(jaxloss, "per_example_grads", None)
    if fn is None:
        return []
    batch = 256

    def build() -> list[Contender]:
        r = _rng(0)
        params = {
            "w1": jnp.asarray(r.standard_normal((784, 256), dtype=np.float32) * 0.05),
            "b1": jnp.zeros((256,), jnp.float32),
            "w2": jnp.asarray(r.standard_normal((256, 10), dtype=np.float32) * 0.05),
            "b2": jnp.zeros((10,), jnp.float32),
        }
        x = jnp.asarray(r.standard_normal((batch, 784), dtype=np.float32))
        y = jnp.asarray(r.integers(0, 10, batch).astype(np.int32))

        def loss(params: Any, x: Any, y: Any) -> Any:
            h = jax.nn.relu(x @ params["w1"] + params["b1"])
            logits = h @ params["w2"] + params["b2"]
            return optax.losses.softmax_cross_entropy_with_integer_labels(logits, y)

        plain = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))
        out = [
            Contender("jaxloss", lambda p, x, y: fn(loss, p, x, y), (params, x, y)),
            Contender("plain", plain, (params, x, y)),
        ]
        torch = torch_or_none()
        if torch is not None:
            from torch.func import grad, vmap

            tp = {k: _torch_tensor(np.asarray(v)) for k, v in params.items()}

            def tloss(p: Any, x: Any, y: Any) -> Any:
                h = torch.relu(x @ p["w1"] + p["b1"])
                return torch.nn.functional.cross_entropy((h @ p["w2"] + p["b2"])[None], y[None])

            tf = vmap(grad(tloss), in_dims=(None, 0, 0))
            out.append(
                Contender(
                    "torch",
                    tf,
                    (tp, _torch_tensor(np.asarray(x)), _torch_tensor(np.asarray(y)).long()),
                    kind="torch",
                )
            )
        return out

    return [
        Case(
            "per_example_grads",
            f"per-example grads, 784-256-10 MLP, batch {batch}",
            build,
            "plain",
            note="baseline: jit(vmap(grad(loss)))",
        )
    ]


def checked(quick: bool) -> list[Case]:
    """The cost of :func:`jaxloss.checked` (value checks on) around a training loss.

    Contenders: the plain value+grad under ``jit``; ``checked`` called eagerly (it compiles the
    checkified function and raises from the host, reading the error back after each call); and
    ``checked`` inside the user's ``jit`` (the error leaves the program through a
    ``jax.debug.callback``).
    """
    sizes = [(4096, 1000)] if quick else [(4096, 1000), (2048, 32000)]
    cases = []
    for b, v in sizes:

        def build(b: int = b, v: int = v) -> list[Contender]:
            x = jnp.asarray(_normal((b, v)))
            y = jnp.asarray(_rng(1).integers(0, v, b).astype(np.int32))

            def loss(x: Any, y: Any) -> Any:
                return jaxloss.softmax_cross_entropy_with_integer_labels(
                    x, y, ignore_index=-100, reduction="mean"
                )

            return [
                Contender("jaxloss", jax.value_and_grad(loss), (x, y)),
                Contender(
                    "checked (eager)",
                    jaxloss.checked(jax.value_and_grad(loss)),
                    (x, y),
                    kind="python",
                ),
                Contender("checked in jit", jax.value_and_grad(jaxloss.checked(loss)), (x, y)),
            ]

        cases.append(
            Case(
                "checked",
                f"integer-label CE value+grad [{b}, {v}] under jaxloss.checked",
                build,
                "jaxloss",
                note="baseline: the same value+grad without checks",
            )
        )
    return cases


# ---------------------------------------------------------------------------------------------
# Large vocabularies: the fused linear + cross-entropy against x @ W -> cross-entropy.

LARGE_VOCAB_TOKENS, LARGE_VOCAB_HIDDEN = 4096, 1024
LARGE_VOCABULARIES = (32000, 128000, 256000)
#: Timed rounds per vocabulary (each value+grad call is seconds to minutes on a CPU).
LARGE_VOCAB_ROUNDS = {32000: 3, 128000: 3, 256000: 2}


def _linear_ce_contenders(n: int, d: int, v: int, dtype: Any) -> list[Contender]:
    """Value + gradients (hidden, weight) of the mean token loss on ``[n, d]`` hidden states and
    a ``[d, v]`` weight in ``dtype``: ``naive`` (``hidden @ weight`` then the integer-label
    cross-entropy, what optax users write) and the fused loss's ``store`` and ``recompute``
    modes at their default chunk size."""
    fn = jaxloss.linear_softmax_cross_entropy
    r = _rng(0)
    h = jnp.asarray(r.standard_normal((n, d), dtype=np.float32) * 0.5).astype(dtype)
    w = jnp.asarray(r.standard_normal((d, v), dtype=np.float32) * d**-0.5).astype(dtype)
    y = jnp.asarray(r.integers(0, v, n).astype(np.int32))

    def naive(h: Any, w: Any, y: Any) -> Any:
        return jaxloss.softmax_cross_entropy_with_integer_labels(h @ w, y, reduction="mean")

    def fused(mode: str) -> Callable[..., Any]:
        return lambda h, w, y: fn(h, w, y, mode=mode)

    return [
        Contender("naive", jax.value_and_grad(naive, (0, 1)), (h, w, y)),
        Contender("store", jax.value_and_grad(fused("store"), (0, 1)), (h, w, y)),
        Contender("recompute", jax.value_and_grad(fused("recompute"), (0, 1)), (h, w, y)),
    ]


def large_vocab(quick: bool) -> list[Case]:
    """Value + gradients (hidden, weight) of the mean token loss: naive / store / recompute.

    ``naive`` is ``softmax_cross_entropy_with_integer_labels(hidden @ weight, labels)`` (what
    optax users write); ``store`` and ``recompute`` are
    :func:`jaxloss.linear_softmax_cross_entropy`'s two modes at their default chunk size. The
    record's ``temp_bytes`` (compiled ``memory_analysis()``) is the memory the logits cost.
    """
    if not hasattr(jaxloss, "linear_softmax_cross_entropy"):
        return []
    if quick:
        sizes = [(512, 128, v) for v in (8000, 32000)]
    else:
        sizes = [(LARGE_VOCAB_TOKENS, LARGE_VOCAB_HIDDEN, v) for v in LARGE_VOCABULARIES]
    cases = []
    for n, d, v in sizes:

        def build(n: int = n, d: int = d, v: int = v) -> list[Contender]:
            return _linear_ce_contenders(n, d, v, jnp.float32)

        cases.append(
            Case(
                "large_vocab",
                f"linear + CE value+grad(hidden, weight) N={n} D={d} V={v}",
                build,
                "naive",
                quick=quick,
                note="baseline: hidden @ weight, then the integer-label cross-entropy",
                info={
                    "vocab": v,
                    "rounds": 2 if quick else LARGE_VOCAB_ROUNDS.get(v, 1),
                    "warmup": 0,
                },
            )
        )
    return cases


#: Cut Cross-Entropy's published setting (Gemma 2 2B's output layer): bfloat16 hidden states
#: and weight, N = 8192 tokens, D = 2304, V = 256000.
CCE_SETTING = (8192, 2304, 256000)
CCE_ROUNDS = 5


def large_vocab_cce(quick: bool) -> list[Case]:
    """CCE's setting in bfloat16 (naive / store / recompute), on a GPU or TPU only.

    On a 2-core CPU one bf16 call of this size takes minutes, so the family returns no case
    when JAX sees only the CPU (``select_cases`` says so) and in ``--quick`` runs. ``naive`` is
    the bf16 ``hidden @ weight`` followed by the integer-label cross-entropy (which computes in
    float32); the fused modes take the bf16 arrays as they are (float32 accumulation).
    """
    if not hasattr(jaxloss, "linear_softmax_cross_entropy"):
        return []
    if quick or jax.default_backend() == "cpu":
        return []
    n, d, v = CCE_SETTING

    def build() -> list[Contender]:
        return _linear_ce_contenders(n, d, v, jnp.bfloat16)

    return [
        Case(
            "large_vocab_cce",
            f"linear + CE value+grad(hidden, weight) bf16 N={n} D={d} V={v} (CCE's setting)",
            build,
            "naive",
            quick=False,
            note="baseline: bf16 hidden @ weight, then the integer-label cross-entropy",
            info={"vocab": v, "rounds": CCE_ROUNDS},
        )
    ]


FAMILIES: dict[str, Callable[[bool], list[Case]]] = {
    "ce_int": ce_int,
    "ce_prob": ce_prob,
    "contract": contract,
    "bf16": bf16,
    "sigmoid": sigmoid,
    "huber": huber,
    "dice": dice,
    "dropout": dropout,
    "per_example_grads": per_example,
    "checked": checked,
    "large_vocab": large_vocab,
    "large_vocab_cce": large_vocab_cce,
}

#: Families that run only where JAX sees a GPU or TPU.
ACCELERATOR_ONLY = ("large_vocab_cce",)

MISSING_NOTE = {
    "huber": "jaxloss.huber_loss",
    "dice": "jaxloss.dice_loss",
    "dropout": "jaxloss.dropout",
    "per_example_grads": "jaxloss.per_example_grads",
    "large_vocab": "jaxloss.linear_softmax_cross_entropy",
}
