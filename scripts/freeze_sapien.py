"""Record SAPIEN's scene parameters of every task (clean scene, seed 0) as the frozen reference that
tests/test_sapien_frozen.py checks (sim/sapien/fingerprint.py). Run it only when SAPIEN is deliberately changed, and
re-measure every SAPIEN number in docs/results.md that was measured on the old freeze.

    python scripts/freeze_sapien.py --commit $(git rev-parse --short HEAD)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RECORD = Path(__file__).resolve().parents[1] / "tests" / "data" / "sapien_frozen.json"


def main() -> None:
    from pushcut.sim.registry import task_names
    from pushcut.sim.sapien.fingerprint import fingerprint, task_parameters

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commit", required=True, help="the commit whose SAPIEN world is frozen")
    parser.add_argument("--out", type=Path, default=RECORD)
    args = parser.parse_args()
    tasks = {}
    for task in task_names():
        parameters = task_parameters(task)
        tasks[task] = {"fingerprint": fingerprint(parameters), "parameters": parameters}
        print(task, tasks[task]["fingerprint"][:16])
    record = {"frozen_commit": args.commit, "scene": "clean, seed 0, all three cameras", "tasks": tasks}
    args.out.write_text(json.dumps(record, indent=None, sort_keys=True) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
