"""Knowledge distillation against PyTorch's numbers, the KL definition and its gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jaxloss as jl

from helpers import assert_grads_match_fd, float64

STUDENT = np.array([[1.0, -0.5, 2.0], [0.0, 0.3, -1.0]])
TEACHER = np.array([[2.0, 0.0, 1.0], [-1.0, 1.0, 0.5]])


def test_matches_pytorch_kl_div_times_t_squared():
    # kl_div(log_softmax(s / 3), softmax(t / 3), reduction=...) * 9 in float64 (torch 2.13).
    with float64():
        np.testing.assert_allclose(
            jl.distillation_loss(STUDENT, TEACHER, 3.0),
            [0.40284407824891455, 0.4598092890583302],
            rtol=1e-12,
        )
        np.testing.assert_allclose(
            jl.distillation_loss(STUDENT, TEACHER, 3.0, reduction="mean"),
            0.4313266836536223,  # reduction="batchmean"
            rtol=1e-12,
        )


def test_gradient_is_t_times_p_minus_q_and_teacher_is_stopped(rng):
    s = rng.normal(size=(4, 5)).astype(np.float32)
    t = rng.normal(size=(4, 5)).astype(np.float32)
    T = 2.5

    def softmax(v):
        e = np.exp(v - v.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    g_s, g_t = jax.grad(lambda a, b: jl.distillation_loss(a, b, T).sum(), argnums=(0, 1))(s, t)
    np.testing.assert_allclose(g_s, T * (softmax(s / T) - softmax(t / T)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(g_t, 0.0)
    with float64():
        s64, t64 = np.float64(s), np.float64(t)
        assert_grads_match_fd(
            lambda a, b, temp: jl.distillation_loss(
                a, b, temp, stop_gradient_teacher=False, reduction="sum"
            ),
            [s64, t64, np.array(T)],
            [0, 1, 2],
        )


def test_class_mask_axis_and_dtype(rng):
    s = rng.normal(size=(3, 4)).astype(np.float32)
    t = rng.normal(size=(3, 4)).astype(np.float32)
    keep = np.array([True, False, True, True])
    # Masked classes are left out of both softmaxes: the loss on the other classes.
    np.testing.assert_allclose(
        jl.distillation_loss(s, t, 2.0, where=np.broadcast_to(keep, s.shape)),
        jl.distillation_loss(s[:, keep], t[:, keep], 2.0),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        jl.distillation_loss(s.T, t.T, 2.0, axis=0), jl.distillation_loss(s, t, 2.0), rtol=1e-6
    )
    # Identical distributions: 0 (weights, where and NaN isolation: tests/test_contract.py).
    np.testing.assert_allclose(jl.distillation_loss(s, s + 1.0, 4.0), 0.0, atol=1e-6)
    assert jax.eval_shape(jl.distillation_loss, s.astype(jnp.bfloat16), t, 2.0).dtype == jnp.float32
