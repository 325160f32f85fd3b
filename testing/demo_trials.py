"""A seeded demo trial database for the dashboard's tests and screenshot, written through TrialsDB like the runner.

Four finished real-robot sessions, SFT vs GRPO on two tasks (50 judged trials each), and one running sim session:

    click_bell      sft 25/50 (50 %)   grpo 35/50 (70 %, Fisher p = 0.066: 50 trials cannot tell them apart)
    handover_block  sft 10/50 (20 %)   grpo 40/50 (80 %, one aborted attempt redone)
    click_bell      grpo on the sim twin, 12/50 judged, last trial seconds ago (running)

One click_bell sft trial was judged a success and corrected to a failure by an operator (history kept). Each
session has a tiny head-camera mp4; every trial has a joints npz.

    python -m pushcut.testing.demo_trials demo/trials.db
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pushcut.common.conventions import EVAL_SEED_START
from pushcut.robot.trials.recording import Mp4Stream
from pushcut.sim.piper_spec import ACTION_NAMES
from pushcut.trials_db.database import SafetyEventRecord, SessionInfo, TrialRecord, TrialsDB

TRIAL_S = 60.0  # seconds between trial starts in the demo


@dataclass(frozen=True)
class DemoSession:
    task: str
    checkpoint: str
    operator: str
    successes: int  # final, after corrections
    judged: int
    planned: int = 50
    robot_kind: str = "real"
    days_ago: float = 0.0
    aborted_at: tuple[int, ...] = ()  # attempt numbers that were aborted


SESSIONS = (
    DemoSession("click_bell", "sft", "ada", 25, 50, days_ago=3.0),
    DemoSession("click_bell", "grpo", "ada", 35, 50, days_ago=2.9),
    DemoSession("handover_block", "sft", "ben", 10, 50, days_ago=2.0),
    DemoSession("handover_block", "grpo", "ben", 40, 50, days_ago=1.9, aborted_at=(17,)),
    DemoSession("click_bell", "grpo", "sim-runner", 9, 12, robot_kind="sim"),
)
CORRECTED = ("click_bell", "sft")  # this session's first failure was first judged a success


def _write_video(path: Path, shade: int) -> None:
    stream = Mp4Stream(path, fps=10)
    for i in range(20):
        frame = np.full((48, 64, 3), shade, dtype=np.uint8)
        frame[10:38, 2 + 2 * i : 14 + 2 * i] = (230, 60, 40)  # a red block moving right
        stream.add(frame)
    stream.close()


def _write_joints(path: Path, rng: np.random.Generator, steps: int = 45, hz: float = 15.0) -> None:
    t = np.arange(steps) / hz
    phase = rng.uniform(0, np.pi, 14)
    commanded = 0.4 * np.sin(np.outer(t, np.full(14, 1.3)) + phase)
    measured = np.vstack([commanded[:1], commanded[:-1]]) + rng.normal(0, 0.004, commanded.shape)  # one tick late
    np.savez(path, t=t, commanded=commanded, measured=measured, names=np.array(ACTION_NAMES))


def _outcomes(spec: DemoSession, rng: np.random.Generator) -> list[str]:
    judged = ["success"] * spec.successes + ["failure"] * (spec.judged - spec.successes)
    rng.shuffle(judged)
    for k in spec.aborted_at:
        judged.insert(k - 1, "aborted")
    return judged


def make_demo_db(path: str | Path, seed: int = 0, now: float | None = None) -> Path:
    """Write the demo database at ``path`` (which must not exist) with its media beside it; returns ``path``."""
    path, now = Path(path), time.time() if now is None else now
    if path.exists():
        raise FileExistsError(f"{path} exists; the demo database is written from scratch")
    media = path.parent / "demo_media"
    media.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with TrialsDB(path) as db:
        for number, spec in enumerate(SESSIONS, 1):
            sid = db.create_session(SessionInfo(
                task=spec.task, checkpoint_label=spec.checkpoint, operator=spec.operator, planned_trials=spec.planned,
                robot="piper" if spec.robot_kind == "real" else "sim", robot_kind=spec.robot_kind,
                judge="operator" if spec.robot_kind == "real" else "predicate", checkpoint_hash=f"{number:02d}ab" * 4,
                settings='{"max_actions": 400, "action_hz": 15, "chunk": 8, "cameras": ["head_camera"]}'))  # fmt: skip
            video = media / f"session{sid}_head.mp4"
            _write_video(video, shade=40 + 30 * number)
            outcomes = _outcomes(spec, rng)
            start = now - spec.days_ago * 86400 - len(outcomes) * TRIAL_S  # the last trial ends 18 s before
            first_failure = outcomes.index("failure") + 1
            real = spec.robot_kind == "real"
            for k, outcome in enumerate(outcomes, 1):
                data = media / f"session{sid}_trial{k}.npz"
                _write_joints(data, rng)
                flipped = real and (spec.task, spec.checkpoint) == CORRECTED and k == first_failure
                began = start + (k - 1) * TRIAL_S
                db.add_trial(sid, TrialRecord(
                    k=k, outcome="success" if flipped else outcome, judged_by="operator" if real else "predicate",
                    started_at=began, ended_at=began + 42.0, instruction=f"{spec.task.replace('_', ' ')}, please",
                    end_reason="operator_stop" if outcome == "aborted" else "done",
                    note="arm bumped the table, reset" if outcome == "aborted" else "", actions=120, chunks=15,
                    latency_p50_ms=21.0 + rng.normal(0, 1), latency_p95_ms=34.0 + rng.normal(0, 2),
                    data_path=db.relative(data), videos={"head_camera": db.relative(video)},
                    safety_events=[SafetyEventRecord(1.2, "joint_limit", "braking before the joint limit "
                                                                         "[left_joint2 2.9->2.87] (14 ticks, 0.13 s)")]
                    if k % 9 == 0 else [],
                    ticks=4200, smoothed_ticks=(37 * k) % 420,  # 42 s at 100 Hz, up to 10 % routine smoothing
                    seed=None if real else EVAL_SEED_START + k,
                    strategy=None if real or outcome != "success" else _sim_strategy(spec.task, k)))  # fmt: skip
                if flipped:
                    trial_id = db.trials(sid)[-1]["id"]
                    db.amend_trial(trial_id, who="ada", outcome="failure", note="bell rang from the arm, not the press")
            updated = start + (len(outcomes) - 1) * TRIAL_S + 42.0  # the last trial's end: a session's heartbeat
            db.conn.execute("UPDATE sessions SET created_at = ?, updated_at = ? WHERE id = ?", (start, updated, sid))
    return path


def _sim_strategy(task: str, k: int) -> str:
    """A plausible strategy for a successful sim-twin trial (pushcut.sim.strategy): every third one pushes."""
    if task == "click_bell":
        return "press"
    return "push" if k % 3 == 0 else "grasp"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m pushcut.testing.demo_trials OUT.db")
    print(make_demo_db(sys.argv[1]))
