"""Keras 3's loss definitions written in NumPy (float64) from its source and documentation.

Independent references for the tests: none of this calls jaxloss. ``EPS`` is Keras's
``backend.epsilon()``.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7
#: Keras clips in float32, where ``1 - 1e-7`` rounds to ``1 - 2**-23``.
HIGH = float(np.float32(1 - EPS))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def softmax(x, axis=-1):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def binary_crossentropy(y, p):
    """keras.ops.binary_crossentropy(from_logits=False): clip, then the two logs, per element."""
    p = np.clip(np.asarray(p, np.float64), EPS, HIGH)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def binary_focal_crossentropy(y, p, gamma, alpha=None, label_smoothing=0.0):
    """keras.losses.binary_focal_crossentropy per element (before Keras's mean over axis -1);
    ``alpha`` given means ``apply_class_balancing=True``."""
    y = np.asarray(y, np.float64) * (1 - label_smoothing) + 0.5 * label_smoothing
    p = np.asarray(p, np.float64)
    p_t = y * p + (1 - y) * (1 - p)
    out = (1 - p_t) ** gamma * binary_crossentropy(y, p)
    if alpha is not None:
        out = (y * alpha + (1 - y) * (1 - alpha)) * out
    return out


def categorical_focal_crossentropy(y, p, gamma, alpha=1.0, label_smoothing=0.0):
    """keras.losses.CategoricalFocalCrossentropy(from_logits=False, label_smoothing=...)."""
    y = np.asarray(y, np.float64)
    y = y * (1 - label_smoothing) + label_smoothing / y.shape[-1]
    p = np.asarray(p, np.float64)
    p = np.clip(p / p.sum(-1, keepdims=True), EPS, HIGH)
    return np.sum(alpha * (1 - p) ** gamma * -y * np.log(p), axis=-1)


def categorical_generalized_cross_entropy(labels, p, q):
    """keras.losses.categorical_generalized_cross_entropy: (1 - p_y^q) / q, integer labels."""
    p = np.asarray(p, np.float64)
    p_y = p[np.arange(len(labels)), labels]
    return (1 - p_y**q) / q


def circle(labels, embeddings, gamma=80.0, margin=0.4, remove_diagonal=True):
    """keras.losses.circle with ref_labels / ref_embeddings defaulting to the batch."""
    z = np.asarray(embeddings, np.float64)
    labels = np.asarray(labels)
    distances = np.maximum(1.0 - z @ z.T, 0.0)
    positive = labels[:, None] == labels[None, :]
    negative = ~positive
    if remove_diagonal:
        positive = positive & ~np.eye(len(labels), dtype=bool)
    pos_weights = np.maximum((margin + distances) * positive, 0.0)
    neg_weights = np.maximum((1 + margin - distances) * negative, 0.0)
    pos_wdists = -gamma * pos_weights * (margin - distances)
    neg_wdists = gamma * neg_weights * (1 - margin - distances)

    def logsumexp(a, mask):
        a = np.where(mask, a, -np.inf)
        m = a.max(axis=1, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        with np.errstate(divide="ignore"):
            return (m + np.log(np.exp(a - m).sum(axis=1, keepdims=True)))[:, 0]

    total = logsumexp(pos_wdists, positive) + logsumexp(neg_wdists, negative)
    return np.logaddexp(0.0, total)  # softplus; 0 where a set is empty
