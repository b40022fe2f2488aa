"""jaxloss is a superset of optax.losses: every public name, same signature, same numbers.

The list of names comes from ``optax.losses`` at run time, so a new optax export fails
``test_every_optax_name_exists`` / ``test_every_optax_name_has_a_parity_case`` until jaxloss
provides it, and ``test_signature_is_a_superset`` checks optax's arguments, their order and
defaults. For each name, values and gradients are compared with optax under ``jit`` in float32
on random inputs of two shapes (the second one under ``vmap`` over a stack of two batches),
and in bfloat16 on the ``vmap`` shape (CTC, slow to compile, uses the ``vmap`` shape only).
For bfloat16 the reference is optax run on the float32 upcast of the same bfloat16 values
(jaxloss accumulates 16-bit inputs in float32, its gradients come back in bfloat16); the
tolerance is bfloat16's. ``test_parity_with_masks_and_axes`` covers optax's own optional
arguments (``axis``, ``where``, ``reduce_fn``, ``blank_id``, ...).
"""

from __future__ import annotations

import functools
import inspect
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.scipy.special import logsumexp

import jaxloss

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

OPTAX_NAMES = sorted(
    name
    for name in dir(optax.losses)
    if not name.startswith("_") and callable(getattr(optax.losses, name))
)


# ---------------------------------------------------------------------------------------------
# Input generators. Each returns a tuple of NumPy arrays (float32 or integer) for one shape.


def _normal(rng, shape, scale=1.0):
    return (scale * rng.normal(size=shape)).astype(np.float32)


def _probs(rng, shape):
    e = np.exp(rng.normal(size=shape))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def _log_probs(rng, shape):
    return np.log(_probs(rng, shape)).astype(np.float32)


def _one_hot(rng, shape):
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    return np.eye(shape[-1], dtype=np.float32)[labels]


def _int_labels(rng, shape):
    return rng.integers(0, shape[-1], size=shape[:-1]).astype(np.int32)


def _signs(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(np.float32)


def _ctc_inputs(rng, shape):
    batch, frames, classes, max_labels = shape
    assert frames >= 2 * max_labels + 2, "keep every sequence alignable"
    logits = _normal(rng, (batch, frames, classes), 2.0)
    frame_lengths = rng.integers(frames - 1, frames + 1, size=batch)
    logit_paddings = (np.arange(frames)[None] >= frame_lengths[:, None]).astype(np.float32)
    labels = rng.integers(1, classes, size=(batch, max_labels)).astype(np.int32)
    labels[0, 1] = labels[0, 0]  # a repeated label
    label_lengths = rng.integers(1, max_labels + 1, size=batch)
    label_paddings = (np.arange(max_labels)[None] >= label_lengths[:, None]).astype(np.float32)
    return logits, logit_paddings, labels, label_paddings


def _ntxent_inputs(rng, shape):
    return _normal(rng, shape), np.repeat(np.arange(shape[0] // 2), 2).astype(np.int32)


# ---------------------------------------------------------------------------------------------
# Parity cases: how to build inputs and call the function in either library.


@dataclass
class Case:
    make: Callable[[np.random.Generator, tuple[int, ...]], tuple[np.ndarray, ...]]
    shapes: tuple[tuple[int, ...] | None, tuple[int, ...]]  # (plain, vmapped); None: skip
    call: Callable[..., Any] | None = None  # call(lib, *inputs); default lib.<name>(*inputs)
    grad_argnums: tuple[int, ...] = (0,)
    kwargs: dict[str, Any] = field(default_factory=dict)


def _pair(first, second):
    return lambda rng, s: (first(rng, s), second(rng, s))


CASES: dict[str, Case] = {
    # cross-entropies and label smoothing (the lead's)
    "softmax_cross_entropy": Case(_pair(_normal, _probs), ((4, 5), (2, 3, 6)), grad_argnums=(0, 1)),
    "safe_softmax_cross_entropy": Case(
        _pair(_normal, _probs), ((4, 5), (2, 3, 6)), grad_argnums=(0, 1)
    ),
    "softmax_cross_entropy_with_integer_labels": Case(
        _pair(_normal, _int_labels), ((4, 5), (2, 3, 6))
    ),
    "sigmoid_binary_cross_entropy": Case(
        lambda rng, s: (_normal(rng, s, 3.0), (rng.random(s) < 0.5).astype(np.float32)),
        ((6,), (3, 4)),
    ),
    "sigmoid_focal_loss": Case(
        lambda rng, s: (_normal(rng, s, 3.0), (rng.random(s) < 0.5).astype(np.float32)),
        ((6,), (3, 4)),
        kwargs={"alpha": 0.25},
    ),
    "smooth_labels": Case(
        lambda rng, s: (_one_hot(rng, s),),
        ((4, 5), (2, 3, 6)),
        call=lambda lib, y: lib.smooth_labels(y, 0.1),
    ),
    "poly_loss_cross_entropy": Case(
        _pair(_normal, _probs), ((4, 5), (2, 3, 6)), grad_argnums=(0, 1)
    ),
    # divergences
    "kl_divergence": Case(_pair(_log_probs, _probs), ((4, 5), (2, 3, 6)), grad_argnums=(0, 1)),
    "kl_divergence_with_log_targets": Case(
        _pair(_log_probs, _log_probs), ((4, 5), (2, 3, 6)), grad_argnums=(0, 1)
    ),
    "generalized_kl_divergence": Case(
        lambda rng, s: (_normal(rng, s, 0.5), np.exp(_normal(rng, s, 0.5))),
        ((4, 5), (2, 3, 6)),
        grad_argnums=(0, 1),
    ),
    "convex_kl_divergence": Case(
        lambda rng, s: (_normal(rng, s, 0.5), np.exp(_normal(rng, s, 0.5))),
        ((4, 5), (2, 3, 6)),
        grad_argnums=(0, 1),
    ),
    # margin and sparse losses
    "hinge_loss": Case(_pair(_normal, _signs), ((6,), (3, 4))),
    "perceptron_loss": Case(_pair(_normal, _signs), ((6,), (3, 4))),
    "multiclass_hinge_loss": Case(_pair(_normal, _int_labels), ((4, 5), (6, 3))),
    "multiclass_perceptron_loss": Case(_pair(_normal, _int_labels), ((4, 5), (6, 3))),
    "sparsemax_loss": Case(
        lambda rng, s: (_normal(rng, s, 2.0), rng.integers(0, 2, size=s).astype(np.int32)),
        ((6,), (3, 4)),
    ),
    "multiclass_sparsemax_loss": Case(
        lambda rng, s: (_normal(rng, s, 2.0), _int_labels(rng, s)), ((4, 5), (6, 3))
    ),
    "make_fenchel_young_loss": Case(
        _pair(_normal, _probs),
        ((4, 5), (2, 3, 6)),
        call=lambda lib, s, t: lib.make_fenchel_young_loss(logsumexp)(s, t),
        grad_argnums=(0, 1),
    ),
    # regression (issue 3)
    "squared_error": Case(_pair(_normal, _normal), ((6,), (3, 4)), grad_argnums=(0, 1)),
    "l2_loss": Case(_pair(_normal, _normal), ((6,), (3, 4)), grad_argnums=(0, 1)),
    "huber_loss": Case(
        lambda rng, s: (_normal(rng, s, 2.0), _normal(rng, s)), ((6,), (3, 4)), grad_argnums=(0, 1)
    ),
    "log_cosh": Case(
        lambda rng, s: (_normal(rng, s, 3.0), _normal(rng, s)), ((6,), (3, 4)), grad_argnums=(0, 1)
    ),
    # segmentation (issue 3)
    "dice_loss": Case(_pair(_normal, _one_hot), ((2, 4, 4, 3), (3, 5, 2))),
    "binary_dice_loss": Case(
        lambda rng, s: (_normal(rng, s), (rng.random(s) < 0.5).astype(np.float32)),
        ((2, 4, 4), (3, 5, 1)),
    ),
    "multiclass_generalized_dice_loss": Case(_pair(_normal, _one_hot), ((2, 4, 4, 3), (3, 5, 2))),
    # embeddings
    "cosine_similarity": Case(_pair(_normal, _normal), ((4, 3), (2, 3, 5)), grad_argnums=(0, 1)),
    "cosine_distance": Case(_pair(_normal, _normal), ((4, 3), (2, 3, 5)), grad_argnums=(0, 1)),
    "ntxent": Case(_ntxent_inputs, ((6, 3), (8, 4))),
    "triplet_margin_loss": Case(
        lambda rng, s: (_normal(rng, s), _normal(rng, s), _normal(rng, s)),
        ((4, 3), (2, 3, 5)),
        grad_argnums=(0, 1, 2),
    ),
    # ranking
    "ranking_softmax_loss": Case(
        lambda rng, s: (_normal(rng, s), rng.integers(0, 3, size=s).astype(np.float32)),
        ((5,), (3, 6)),
    ),
    # sequences
    # CTC's scan is slow to compile: one (vmapped) shape only.
    "ctc_loss": Case(_ctc_inputs, (None, (3, 8, 5, 3))),
    "ctc_loss_with_forward_probs": Case(_ctc_inputs, (None, (3, 8, 5, 3))),
}


# ---------------------------------------------------------------------------------------------
# Running a case.


def _caller(lib: Any, name: str, case: Case) -> Callable[..., Any]:
    if case.call is not None:
        return lambda *xs: case.call(lib, *xs)
    fn = getattr(lib, name)
    return lambda *xs: fn(*xs, **case.kwargs)


def _first(out: Any) -> jax.Array:
    """The loss of a function's result (ctc_loss_with_forward_probs returns a tuple)."""
    return out[0] if isinstance(out, tuple) else out


def _evaluate(lib: Any, name: str, case: Case, inputs: list[tuple | None]) -> Any:
    """One jitted call: value and gradients at the first shape, the same under ``vmap`` (over
    a stack of two batches) at the second shape. A ``None`` shape is skipped."""
    f = _caller(lib, name, case)

    def scalar(*xs):
        out = f(*xs)
        return jnp.sum(_first(out).astype(jnp.float32)), out

    value_and_grad = jax.value_and_grad(scalar, argnums=case.grad_argnums, has_aux=True)

    def everything(first, second):
        plain = None if first is None else value_and_grad(*first)
        if second is None:
            return plain, None
        stacked = tuple(jnp.stack([x, x[::-1]]) for x in second)
        return plain, jax.vmap(value_and_grad)(*stacked)

    return _fast_jit(everything)(*inputs)


# XLA's optimisation passes dominate this module's runtime and do not change what is compared.
_FAST_COMPILE = {"xla_backend_optimization_level": 0}


def _fast_jit(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``jax.jit(fn)``, compiled with XLA's backend optimisations off (faster to compile)."""

    def run(*args):
        return jax.jit(fn).lower(*args).compile(compiler_options=_FAST_COMPILE)(*args)

    return run


def _to_bf16(x: np.ndarray) -> np.ndarray:
    """Round float inputs to bfloat16-representable values (kept as float32)."""
    if not np.issubdtype(x.dtype, np.floating):
        return x
    return np.asarray(jnp.asarray(x).astype(jnp.bfloat16).astype(jnp.float32))


@functools.cache
def _inputs_and_reference(name: str) -> tuple[list[tuple], Any]:
    """Random inputs (bfloat16-representable, so both dtypes share them) and optax's results."""
    case = CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    inputs = [
        None if shape is None else tuple(_to_bf16(x) for x in case.make(rng, shape))
        for shape in case.shapes
    ]
    reference = _evaluate(
        optax.losses,
        name,
        case,
        [None if xs is None else tuple(jnp.asarray(x) for x in xs) for xs in inputs],
    )
    return inputs, jax.device_get(reference)


def _assert_close(actual, expected, what, rtol, atol):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", OPTAX_NAMES)
def test_parity_with_optax(name, dtype):
    if not hasattr(jaxloss, name):
        pytest.fail(f"jaxloss.{name} is missing (optax.losses.{name} exists)")
    if name not in CASES:
        pytest.fail(f"no parity case for optax.losses.{name}; add one to CASES")
    case = CASES[name]
    inputs, reference = _inputs_and_reference(name)
    # float32: optax's own inputs, both shapes. bfloat16 (the vmapped shape only, to keep the
    # compile time down): the same values in bfloat16 for jaxloss, against optax on their
    # float32 upcast.
    to = jnp.float32 if dtype == "float32" else jnp.bfloat16
    ours_in = [
        None
        if xs is None
        else tuple(
            jnp.asarray(x).astype(to) if np.issubdtype(x.dtype, np.floating) else jnp.asarray(x)
            for x in xs
        )
        for xs in inputs
    ]
    if dtype == "bfloat16":
        ours_in[0] = None
    # Losses are accumulated in float32, so they must equal optax's float32 values to float32
    # precision; only smooth_labels (labels, not a loss) keeps the input dtype. Gradients come
    # back in bfloat16 and get bfloat16's tolerance.
    grad_tol = 2e-5 if dtype == "float32" else 1e-2
    ours = _evaluate(jaxloss, name, case, ours_in)
    for where, xs, result, ref in zip(
        (f"shape {case.shapes[0]}", f"vmap, shape {case.shapes[1]}"),
        ours_in,
        ours,
        reference,
        strict=True,
    ):
        if xs is None:
            continue
        (_, out), grads = result
        (_, ref_out), ref_grads = ref
        out_leaves, ref_leaves = jax.tree.leaves(out), jax.tree.leaves(ref_out)
        assert len(out_leaves) == len(ref_leaves), f"{name}: different number of outputs"
        for a, b in zip(out_leaves, ref_leaves, strict=True):
            if dtype == "bfloat16" and name != "smooth_labels":
                assert a.dtype == jnp.float32, f"{name}: a bfloat16 loss must come out float32"
            tol = 2e-5 if a.dtype.itemsize >= 4 else 1e-2
            _assert_close(a, b, f"{name} value, {where}, {dtype}", tol, tol)
        for argnum, g, ref_g in zip(case.grad_argnums, grads, ref_grads, strict=True):
            assert g.dtype == xs[argnum].dtype, (
                f"{name}: gradient dtype {g.dtype} is not the input's {xs[argnum].dtype}"
            )
            _assert_close(g, ref_g, f"{name} grad[{argnum}], {where}, {dtype}", grad_tol, grad_tol)


def test_every_optax_name_exists():
    missing = [name for name in OPTAX_NAMES if not hasattr(jaxloss, name)]
    assert not missing, f"jaxloss lacks these optax.losses names: {missing}"
    not_exported = [name for name in OPTAX_NAMES if name not in jaxloss.__all__]
    assert not not_exported, f"not in jaxloss.__all__: {not_exported}"


def test_every_optax_name_has_a_parity_case():
    assert len(OPTAX_NAMES) >= 32
    assert [name for name in OPTAX_NAMES if name not in CASES] == []


_KINDS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@pytest.mark.parametrize("name", OPTAX_NAMES)
def test_signature_is_a_superset(name):
    """optax's positional arguments in order, its keywords, and its defaults, all kept."""
    if not hasattr(jaxloss, name):
        pytest.fail(f"jaxloss.{name} is missing")
    theirs = inspect.signature(getattr(optax.losses, name)).parameters
    ours = inspect.signature(getattr(jaxloss, name)).parameters
    their_positional = [p for p, q in theirs.items() if q.kind in _KINDS]
    our_positional = [p for p, q in ours.items() if q.kind in _KINDS]
    assert our_positional[: len(their_positional)] == their_positional
    for pname, param in theirs.items():
        assert pname in ours, f"{name}: optax argument {pname!r} missing"
        mine = ours[pname]
        if param.kind == inspect.Parameter.KEYWORD_ONLY:
            assert mine.kind in (*_KINDS, inspect.Parameter.KEYWORD_ONLY)
        default, our_default = param.default, mine.default
        if default is inspect.Parameter.empty:
            assert our_default is inspect.Parameter.empty, f"{name}: {pname} gained a default"
        elif callable(default):
            assert our_default is default, f"{name}: default of {pname} differs"
        else:
            assert our_default == default, (
                f"{name}: default of {pname} is {our_default!r}, optax's is {default!r}"
            )
    # Anything jaxloss adds must be optional, so optax's calls keep working.
    for pname, mine in ours.items():
        if pname not in theirs and mine.kind not in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            assert mine.default is not inspect.Parameter.empty, f"{name}: {pname} is required"


def test_fenchel_young_loss_from_max_is_the_perceptron_loss():
    """The factory with a different max function; and its returned loss keeps optax's call."""
    rng = np.random.default_rng(3)
    scores = jnp.asarray(_normal(rng, (5, 4)))
    targets = jnp.asarray(_one_hot(rng, (5, 4)))
    ours = jaxloss.make_fenchel_young_loss(jnp.max)(scores, targets)
    theirs = optax.losses.make_fenchel_young_loss(jnp.max)(scores, targets)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def _check_call(name, *args, rtol=1e-5, atol=1e-6, **kwargs):
    """jaxloss.<name> and optax.losses.<name> on the same call (jitted) give the same arrays."""

    def run(lib):
        return _fast_jit(lambda *xs: getattr(lib, name)(*xs, **kwargs))(*args)

    for ours, theirs in zip(
        jax.tree.leaves(run(jaxloss)), jax.tree.leaves(run(optax.losses)), strict=True
    ):
        np.testing.assert_allclose(
            ours, theirs, rtol=rtol, atol=atol, err_msg=f"{name} {sorted(kwargs)}"
        )


def test_parity_with_masks_and_axes():
    """optax's own ``axis``/``where``/``reduce_fn``/... arguments give optax's results."""
    rng = np.random.default_rng(4)
    x = jnp.asarray(_normal(rng, (3, 4, 5)))
    log_q = jax.nn.log_softmax(x, axis=1)
    t = jnp.asarray(_probs(rng, (3, 5, 4))).transpose(0, 2, 1)
    where = jnp.asarray(rng.random((3, 4, 5)) < 0.7)
    _check_call("kl_divergence", log_q, t, axis=(1, 2))
    _check_call("generalized_kl_divergence", log_q, t, axis=1, where=where)
    _check_call("kl_divergence_with_log_targets", log_q, jnp.log(t), axis=None)
    _check_call("poly_loss_cross_entropy", x, t, axis=1, epsilon=-1.0, where=where)
    y = jnp.asarray(_normal(rng, (3, 4, 5)))
    _check_call("cosine_similarity", x, y, axis=(1, 2))
    _check_call("cosine_distance", x, y, where=where, epsilon=0.5)
    items = jnp.asarray(rng.random((3, 5)) < 0.6).at[1].set(False)
    relevance = jnp.asarray(rng.integers(0, 3, (3, 5)).astype(np.float32))
    item_weights = jnp.asarray(rng.random((3, 5)).astype(np.float32))
    for reduce_fn in (jnp.mean, None):
        _check_call(
            "ranking_softmax_loss",
            x[:, 0],
            relevance,
            where=items,
            weights=item_weights,
            reduce_fn=reduce_fn,
        )
    a, p, n = (jnp.asarray(_normal(rng, (3, 4))) for _ in range(3))
    _check_call("triplet_margin_loss", a, p, n, axis=0, norm_degree=4, margin=0.1, eps=0.0)
    logits, logit_pad, labels, label_pad = _ctc_inputs(rng, (2, 8, 4, 3))
    labels = np.where(labels == 3, 1, labels)  # class 3 is the blank here
    _check_call(
        "ctc_loss_with_forward_probs",
        logits,
        logit_pad,
        labels,
        label_pad,
        blank_id=3,
        log_epsilon=-1e4,
        rtol=1e-5,
        atol=1e-4,
    )
