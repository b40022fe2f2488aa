"""jaxloss's benchmark harness: ``python -m bench`` (or ``make bench``).

Families of cases (cross-entropies at three vocabulary sizes, contract overhead, bfloat16,
sigmoid/focal, Huber, Dice, dropout, per-example gradients) are timed under ``jit`` against
optax, a straightforward JAX formulation and PyTorch CPU (when installed), interleaving the
contenders round by round and reporting paired ratios, page faults, compiled memory, HLO traffic
and each memory-bound case against the bandwidth measured in the same run. See
``bench/README.md``.
"""
