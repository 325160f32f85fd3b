"""The robot side (and the Piper constants it shares with the simulator) never imports torch or mujoco."""

import subprocess
import sys


def test_robot_side_imports_neither_torch_nor_mujoco():
    code = (
        "import sys, pushcut.robot, pushcut.sim, pushcut.sim.piper_spec;"
        "bad = [m for m in ('torch', 'mujoco', 'transformers') if m in sys.modules];"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"robot side imported {result.stdout.strip()} {result.stderr[-2000:]}"
