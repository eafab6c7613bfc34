"""The long fuzz run: every file of tests/fuzz in its own pytest process, side by side; summed counts.

    python tests/fuzz/run.py            # CLAUSE_FUZZ=long; budgets × CLAUSE_FUZZ_SCALE (default 1)

Exits non-zero if any file failed. Each process keeps its running counts in a
JSON file, so the figures survive even an interrupted run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    files = sorted(HERE.glob("test_*.py"))
    with tempfile.TemporaryDirectory(prefix="clause-fuzz-run-") as tmp:
        procs = []
        for f in files:
            env = dict(os.environ, CLAUSE_FUZZ="long", CLAUSE_FUZZ_COUNTS=str(Path(tmp) / f"{f.stem}.json"))
            log = (Path(tmp) / f"{f.stem}.log").open("w")
            procs.append((f, log, subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-m", "fuzz", "-p",
                                                    "no:cacheprovider", str(f)], env=env, stdout=log,
                                                   stderr=subprocess.STDOUT)))
        failed = []
        for f, log, proc in procs:
            if proc.wait() != 0:
                failed.append(f.name)
            log.close()
            print(f"--- {f.name}: exit {proc.returncode}\n" + "\n".join(
                (Path(tmp) / f"{f.stem}.log").read_text().splitlines()[-15:]))
        total: Counter[str] = Counter()
        for f in files:
            counts = Path(tmp) / f"{f.stem}.json"
            if counts.exists():
                total.update(json.loads(counts.read_text()))
    kills = total.pop("kills", 0)
    print(f"generated inputs: {dict(sorted(total.items()))}; total {sum(total.values())}; kills {kills}")
    print("failed: " + (", ".join(failed) if failed else "none"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
