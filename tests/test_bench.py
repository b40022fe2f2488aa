"""Smoke test of the benchmark harness (bench/): its machinery runs on tiny cases.

No timing is asserted; this only checks that the harness still runs end to end (interleaved
timing, paired ratios, compiled memory, HLO traffic, bandwidth limits, the JSON/Markdown/PNG
writers and the command line), so CI notices when a change breaks ``make bench``.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import pytest

import bench.cases
from bench import __main__ as bench_main
from bench.report import machine_name, markdown, write_results
from bench.run import _cpu_caches, add_limits, environment, run_case
from bench.timing import bandwidth, compiled_stats, hlo_traffic, paired_ratio, time_interleaved


@pytest.fixture
def no_torch(monkeypatch):
    monkeypatch.setattr(bench.cases, "torch_or_none", lambda: None)


def test_time_interleaved_and_paired_ratio():
    calls = []
    t = time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        rounds=4,
        min_sample_s=0.0,
        warmup=1,
    )
    assert len(t["a"].times) == len(t["b"].times) == 4 and len(t["a"].cpu_times) == 4
    # Rounds alternate: a b | b a | a b | b a (after a warm-up and a calibration call each).
    assert calls[4:] == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert paired_ratio([2.0, 4.0, 6.0], [1.0, 2.0, 3.0]) == 2.0


def test_hlo_traffic_counts_big_arrays():
    f = jax.jit(lambda x: jnp.exp(x) * 2.0 + jnp.sum(x))
    compiled = f.lower(jax.ShapeDtypeStruct((512, 1024), jnp.float32)).compile()
    traffic = hlo_traffic(compiled.as_text(), min_bytes=1 << 20)
    nbytes = 512 * 1024 * 4
    assert traffic["write_bytes"] >= nbytes and traffic["read_bytes"] >= nbytes
    stats = compiled_stats(compiled)
    assert stats["output_bytes"] == nbytes and "hlo_kernels" in stats


def test_tiny_case_end_to_end(tmp_path, no_torch):
    case = bench.cases._int_ce_case(8, 16, True, True)
    record = run_case(case, quick=True)
    names = set(record["contenders"])
    assert {"jaxloss", "optax", "plain"} <= names
    losses = [c["loss"] for c in record["contenders"].values()]
    assert max(losses) - min(losses) < 1e-4  # every contender computes the same loss
    bw = bandwidth(gib=1 / 256, rounds=3)
    assert bw["read_gbs"] > 0 and bw["read_write_gbs"] > 0
    bw.update(array_gib=1 / 256, before=dict(bw), after=dict(bw))
    add_limits(record, bw)
    assert record["two_pass_limit_ms"] > 0
    assert all("fraction_of_two_pass_limit" in c for c in record["contenders"].values())
    results = {"environment": environment(), "bandwidth": bw, "cases": [record], "quick": True}
    paths = write_results(results, str(tmp_path), "smoke")
    assert [p.rsplit(".", 1)[1] for p in paths] == ["json", "md", "png"]
    loaded = json.loads((tmp_path / "smoke.json").read_text())
    assert loaded["cases"][0]["baseline"] == "optax"
    assert "| jaxloss |" in (tmp_path / "smoke.md").read_text()
    assert machine_name(results["environment"]).startswith(jax.devices()[0].platform)


def test_cli_lists_cases(monkeypatch, capsys, no_torch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")  # no re-exec in the test
    assert bench_main.main(["--list", "--quick", "--filter", "ce_int,contract"]) == 0
    out = capsys.readouterr().out
    assert "integer-label CE value+grad [4096, 1000]" in out and "contract" in out
    assert "sigmoid" not in out


def test_cce_setting_runs_only_on_an_accelerator(monkeypatch, no_torch):
    from bench.run import select_cases

    logged: list[str] = []
    assert select_cases(["large_vocab_cce"], False, logged.append) == []
    assert any("runs only on a GPU or TPU" in line for line in logged)
    # As on a GPU, at a size this machine can run: the three contenders agree on the loss,
    # and each record carries the compiled temporary memory the family is there to measure.
    monkeypatch.setattr(bench.cases.jax, "default_backend", lambda: "gpu")
    monkeypatch.setattr(bench.cases, "CCE_SETTING", (64, 32, 4096))
    monkeypatch.setattr(bench.cases, "CCE_ROUNDS", 2)
    [case] = select_cases(["large_vocab_cce"], False, logged.append)
    assert "bf16 N=64 D=32 V=4096" in case.name
    record = run_case(case, quick=True)
    c = record["contenders"]
    assert set(c) == {"naive", "store", "recompute"}
    assert c["store"]["loss"] == pytest.approx(c["naive"]["loss"], rel=2e-3)
    assert c["recompute"]["loss"] == pytest.approx(c["naive"]["loss"], rel=2e-3)
    assert all(e["memory"]["temp_bytes"] > 0 for e in c.values())


def test_cpu_caches_read_from_sysfs_and_reported(tmp_path):
    for index, (level, kind, size) in enumerate(
        [
            ("1", "Data", "48K"),
            ("1", "Instruction", "64K"),
            ("2", "Unified", "2048K"),
            ("3", "Unified", "491520K"),
        ]
    ):
        d = tmp_path / f"index{index}"
        d.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (d / name).write_text(value + "\n")
    (tmp_path / "uevent").write_text("")  # not a cache entry
    caches = _cpu_caches(str(tmp_path))
    assert caches == {"L1d": "48K", "L1i": "64K", "L2": "2048K", "L3": "491520K"}
    assert _cpu_caches(str(tmp_path / "absent")) == {}
    env = dict(environment(), cpu_caches=caches)
    text = markdown({"environment": env, "bandwidth": None, "cases": [], "quick": True})
    assert "- CPU caches (per instance): L1d 48K, L1i 64K, L2 2048K, L3 491520K" in text
