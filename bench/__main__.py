"""``python -m bench``: run the benchmark families and write the results.

Large-array CPU timings depend on the allocator: without transparent huge pages, every fresh
output buffer XLA writes takes one page fault per 4 KiB page, which alone changes such timings
2–3×. The harness therefore re-executes itself with ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``
(glibc ``madvise``s its large allocations for huge pages) unless ``GLIBC_TUNABLES`` is already
set or ``--no-hugepages`` is given, and records the setting and page faults per call.
"""

from __future__ import annotations

import argparse
import os
import sys

HUGEPAGES = "glibc.malloc.hugetlb=1"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="a small subset (smaller arrays, fewer rounds) in under 2 minutes",
    )
    p.add_argument(
        "--filter",
        default="",
        help="comma-separated substrings of family names, e.g. ce_int,bf16; "
        "semi_supervised runs only the few-label digits accuracy benchmark",
    )
    p.add_argument(
        "--out",
        default=None,
        help="output folder (default build/bench, untracked; bench/results with --write-results)",
    )
    p.add_argument(
        "--write-results",
        action="store_true",
        help="write into the tracked bench/results/ (a run to commit; not with --quick), "
        "including the few-label digits results file",
    )
    p.add_argument("--name", default=None, help="file stem (default <machine>-<date>)")
    p.add_argument(
        "--bandwidth-gib",
        type=float,
        default=None,
        help="array size of the bandwidth probe (default 1, 0.25 with --quick; 0 skips)",
    )
    p.add_argument(
        "--no-hugepages",
        action="store_true",
        help="do not set GLIBC_TUNABLES=glibc.malloc.hugetlb=1",
    )
    p.add_argument(
        "--vocab",
        default="",
        help="comma-separated vocabularies of the large_vocab family (default 32000,128000,256000; "
        "a value+grad call at 256000 takes minutes on a 2-core CPU)",
    )
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-accuracy",
        action="store_true",
        help="skip the few-label digits accuracy benchmark (semi_supervised)",
    )
    return p.parse_args(argv)


def run_semi_supervised(quick: bool, write_results: bool = False) -> None:
    """The few-label digits benchmark (examples/semi_supervised_digits.py), an accuracy family.

    It prints its table; with ``write_results`` the full run rewrites
    ``bench/results/semi_supervised_digits.md``.
    """
    import pathlib
    import runpy

    root = pathlib.Path(__file__).resolve().parent.parent
    script = root / "examples" / "semi_supervised_digits.py"
    module = runpy.run_path(str(script), run_name="bench_semi_supervised")
    module["main"](["--quick"] if quick else (["--write-results"] if write_results else []))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.write_results and args.quick:
        print("--write-results records a full run; drop --quick", file=sys.stderr)
        return 2
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if args.out is None:
        args.out = os.path.join(
            root, *(("bench", "results") if args.write_results else ("build", "bench"))
        )
    if not args.no_hugepages and "GLIBC_TUNABLES" not in os.environ:
        # glibc reads its tunables at start-up only: re-execute with the setting.
        env = dict(os.environ, GLIBC_TUNABLES=HUGEPAGES)
        os.execve(sys.executable, [sys.executable, "-m", "bench", *argv], env)

    from bench import cases
    from bench.report import write_results
    from bench.run import run, select_cases

    if args.vocab:
        cases.LARGE_VOCABULARIES = tuple(int(v) for v in args.vocab.split(","))

    families = [f for f in args.filter.split(",") if f]
    if args.list:
        for case in select_cases(families, args.quick):
            print(f"{case.family:18s} {case.name}  (baseline {case.baseline})")
        return 0
    timed = [f for f in families if f not in ("semi_supervised", "accuracy")]
    if timed or not families:
        results = run(
            timed, quick=args.quick, bandwidth_gib=args.bandwidth_gib, progress=not args.no_progress
        )
        for path in write_results(results, args.out, args.name):
            print(path)
    if not args.no_accuracy and (
        not families or any(f in ("semi_supervised", "accuracy") for f in families)
    ):
        run_semi_supervised(args.quick, args.write_results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
