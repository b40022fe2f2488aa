"""One process of the two-process data-parallel test (``test_scale.py``).

``python tests/scale_distributed.py PROCESS_ID PORT OUT`` joins a 2-process ``jax.distributed``
job on 127.0.0.1:PORT with CPU collectives (gloo), 4 local devices each (``XLA_FLAGS`` set by
the caller), builds one global mesh of 8 devices and computes the loss and the gradient of a
data-parallel step two ways: plain ``jit`` over the global mesh (the batch sharded, nothing
else to say), and ``shard_map`` with ``axis_name="data"`` (each device reduces its rows, the
reducer sums numerator and denominator over the mesh). Writes ``OUT/process<ID>.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROWS, FEATURES, CLASSES = 32, 8, 16


def batch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parameters ``[D, C]``, inputs ``[N, D]`` and labels ``[N]`` with uneven padding (-1)."""
    rng = np.random.default_rng(42)
    params = rng.normal(size=(FEATURES, CLASSES)).astype(np.float32) * 0.5
    inputs = rng.normal(size=(ROWS, FEATURES)).astype(np.float32)
    labels = rng.integers(0, CLASSES, ROWS).astype(np.int32)
    # Device d holds rows 4d … 4d+3: valid rows per device 1, 0, 0, 2, 4, 3, 4, 4 (a mean of
    # per-device means is not the global mean here).
    padded = np.zeros(ROWS, bool)
    padded[1:14] = True
    padded[21] = True
    labels[padded] = -1
    return params, inputs, labels


def loss(params, inputs, labels, axis_name=None):
    import jaxloss as jl

    return jl.softmax_cross_entropy_with_integer_labels(
        inputs @ params, labels, ignore_index=-1, reduction="mean", axis_name=axis_name
    )


def main(process_id: int, port: int, out: Path) -> None:
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=2,
        process_id=process_id,
        initialization_timeout=60,
    )
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    assert jax.process_count() == 2 and jax.device_count() == 8, jax.devices()
    assert jax.local_device_count() == 4
    mesh = jax.make_mesh((8,), ("data",))
    params, inputs, labels = batch()

    def global_array(x, spec):
        sharding = NamedSharding(mesh, spec)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    w = global_array(params, P())
    x = global_array(inputs, P("data"))
    y = global_array(labels, P("data"))
    with jax.set_mesh(mesh):
        jit_loss, jit_grad = jax.jit(jax.value_and_grad(loss))(w, x, y)

        def local_step(w, x, y):
            return jax.value_and_grad(lambda w: loss(w, x, y, axis_name="data"))(w)

        step = jax.shard_map(
            local_step, mesh=mesh, in_specs=(P(), P("data"), P("data")), out_specs=(P(), P())
        )
        sm_loss, sm_grad = jax.jit(step)(w, x, y)
    result = {
        "jit": [float(jit_loss), np.asarray(jit_grad).tolist()],
        "shard_map": [float(sm_loss), np.asarray(sm_grad).tolist()],
    }
    (out / f"process{process_id}.json").write_text(json.dumps(result))
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
