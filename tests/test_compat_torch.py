"""``jaxloss.compat.torch`` against PyTorch's own numbers.

The values and gradients were produced by PyTorch 2.13 (CPU) with
``tests/torch_reference/generate.py`` and committed in ``functional.json``: every case is
replayed here for each reduction, with the gradient of the (summed) output with respect to
every floating-point input, targets included.
"""

from __future__ import annotations

import inspect
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss.compat.torch as F

REFERENCE = json.loads(
    (pathlib.Path(__file__).parent / "torch_reference" / "functional.json").read_text()
)
CASES = REFERENCE["cases"]
IDS = [f"{c['fn']}-{i}" for i, c in enumerate(CASES)]


def _call(case, reduction, floats):
    args = list(floats)
    args += [jnp.asarray(np.asarray(a, np.float32)) for a in case["extra"]]
    args += [jnp.asarray(np.asarray(a, np.int32)) for a in case["ints"]]
    kw = {
        k: jnp.asarray(np.asarray(v, np.float32)) if isinstance(v, list) else v
        for k, v in case["kw"].items()
    }
    return getattr(F, case["fn"])(*args, reduction=reduction, **kw)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_values_and_gradients_equal_pytorch(case):
    floats = [jnp.asarray(np.asarray(a, np.float32)) for a in case["floats"]]
    for reduction, expected in case["results"].items():

        def total(*fs, reduction=reduction):
            out = _call(case, reduction, fs)
            return jnp.sum(out), out

        argnums = tuple(range(len(floats)))
        (_, value), grads = jax.jit(jax.value_and_grad(total, argnums, has_aux=True))(*floats)
        np.testing.assert_allclose(
            value,
            np.asarray(expected["value"], np.float32),
            rtol=2e-5,
            atol=1e-6,
            err_msg=f"{case['fn']} {reduction}",
        )
        finite = np.all(np.isfinite(np.asarray(expected["value"])))
        if not finite or case["values_only"]:
            # PyTorch's gradient of an infinite loss, or through a clamped log, is no reference.
            continue
        for got, want in zip(grads, expected["grads"], strict=True):
            np.testing.assert_allclose(
                got,
                np.asarray(want, np.float32),
                rtol=1e-4,
                atol=1e-6,
                err_msg=f"{case['fn']} {reduction} gradient",
            )


def test_every_function_has_a_reference_case_and_pytorchs_defaults():
    assert {c["fn"] for c in CASES} == set(F.__all__)
    defaults = {
        "cross_entropy": dict(ignore_index=-100, reduction="mean", label_smoothing=0.0),
        "nll_loss": dict(ignore_index=-100, reduction="mean"),
        "smooth_l1_loss": dict(beta=1.0),
        "huber_loss": dict(delta=1.0),
        "poisson_nll_loss": dict(log_input=True, full=False, eps=1e-8),
        "margin_ranking_loss": dict(margin=0.0),
        "hinge_embedding_loss": dict(margin=1.0),
        "cosine_embedding_loss": dict(margin=0.0),
        "multi_margin_loss": dict(p=1, margin=1.0),
        "triplet_margin_loss": dict(margin=1.0, p=2.0, eps=1e-6, swap=False),
        "ctc_loss": dict(blank=0, zero_infinity=False),
    }
    for name in F.__all__:
        params = inspect.signature(getattr(F, name)).parameters
        assert params["reduction"].default == "mean", name
        for arg, value in defaults.get(name, {}).items():
            assert params[arg].default == value, (name, arg)


def test_reduction_errors_name_pytorchs_choices():
    with pytest.raises(ValueError, match=r"reduction must be one of 'none', 'mean', 'sum'"):
        F.mse_loss(jnp.ones(2), jnp.ones(2), reduction="weighted_mean")
    with pytest.raises(ValueError, match="batchmean"):
        F.kl_div(jnp.ones(2), jnp.ones(2), reduction="average")
    with pytest.raises(ValueError, match=r"targets must be \[N, S\]"):
        F.ctc_loss(jnp.zeros((3, 1, 2)), jnp.array([1]), jnp.array([3]), jnp.array([1]))


def test_unknown_keywords_name_the_fix():
    x = jnp.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    y = jnp.array([0, 2])
    with pytest.raises(TypeError, match=r"size_average= is reduction="):
        F.cross_entropy(x, y, size_average=True)
    with pytest.raises(TypeError, match=r"did you mean reduction=\?"):
        F.mse_loss(x, x, reductoin="sum")
    with pytest.raises(TypeError, match=r"did you mean label_smoothing=\?"):
        F.cross_entropy(x, y, label_smooth=0.1)
    # Accepted keywords pass through: PyTorch's weight= is a class weight here.
    w = jnp.array([1.0, 2.0, 3.0])
    got = F.cross_entropy(x, y, weight=w)
    lse = np.log(np.exp(np.asarray(x)).sum(-1))
    per = lse - np.asarray(x)[[0, 1], [0, 2]]
    np.testing.assert_allclose(got, (1.0 * per[0] + 3.0 * per[1]) / 4.0, rtol=1e-6)
    assert F.cross_entropy.__name__ == "cross_entropy" and F.cross_entropy.__doc__
