"""Batch throughput: one process, local worker processes, and a Dask LocalCluster, side by side.

    python bench/batch.py                    # 100,000 generated cases, best of 3 runs each
    python bench/batch.py --cases 20000 --repeat 1 --workers 2 --dask local:2

Each configuration runs the real command (``clause batch IN -o OUT``) in a
subprocess, so start-up (loading policies, spawning workers, starting a
cluster) is counted as a user would feel it. Runs are interleaved and the
best is kept; the table gives cases/s and the ratio to one process, so a
noisy machine still gives a usable answer. Outputs are compared byte for
byte with the one-process output (a mismatch is an error, not a figure).
On Linux each run also reports the CPU the rest of the machine used meanwhile
("others", in cores: /proc/stat's busy time minus the command's own), so a
figure taken on a shared machine says how shared it was.
Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_itellum import generate  # noqa: E402


def busy() -> float:
    """CPU seconds the whole machine has been busy (Linux), else 0."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            ticks = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def own() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run(args: list[str], cwd: Path) -> tuple[float, float]:
    """Seconds of the whole command, and the cores the rest of the machine kept busy meanwhile."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    machine, ours = busy(), own()
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "batch", *args, "--no-progress"], cwd=cwd,
                          env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    others = max(0.0, (busy() - machine) - (own() - ours)) / seconds
    if proc.returncode != 0:
        raise SystemExit(f"clause batch {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return seconds, others


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="processes for --workers (default 2)")
    parser.add_argument("--dask", default="local:2", help="scheduler for --dask ('' to skip)")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="clause-bench-batch-") as tmp:
        folder = Path(tmp)
        source = folder / "cases.jsonl"
        source.write_text("".join(json.dumps(c) + "\n" for c in generate(opts.cases)), encoding="utf-8")
        configs = {"1 process": [], f"--workers {opts.workers}": ["--workers", str(opts.workers)]}
        if opts.dask:
            configs[f"--dask {opts.dask}"] = ["--dask", opts.dask]
        best: dict[str, tuple[float, float]] = {}
        for _ in range(opts.repeat):
            for name, extra in configs.items():
                out = folder / f"{name.replace(' ', '_').replace(':', '_')}.jsonl"
                seconds, others = run([str(source), "-o", str(out), *extra], folder)
                best[name] = min(best.get(name, (seconds, others)), (seconds, others))
        reference = (folder / "1_process.jsonl").read_bytes()
        for name in configs:
            out = folder / f"{name.replace(' ', '_').replace(':', '_')}.jsonl"
            if out.read_bytes() != reference:
                raise SystemExit(f"{name}: the output differs from one process's")
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"{opts.cases:,} cases, best of {opts.repeat} (whole command, start-up included)")
    print(f"{'configuration':<22} {'seconds':>8} {'cases/s':>10} {'× 1 process':>12} {'others':>7}")
    base = best["1 process"][0]
    for name, (seconds, others) in best.items():
        print(f"{name:<22} {seconds:>8.2f} {opts.cases / seconds:>10,.0f} {base / seconds:>12.2f} {others:>7.2f}")
    print(f"others: cores the rest of the machine kept busy during that run; load average now "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
