"""The trial runner behind ``pushcut trial run``: N trials of a served policy on the Piper pair or its MuJoCo twin,
each recorded (video, joints, safety events) and committed to the trial database as soon as it ends.

Per trial: sim robot -> automatic reset on the next held-out seed; real robot -> the operator sets the scene and
confirms. The executor plays the policy until done (sim: the task predicate), the action limit, a fault or an
operator stop; then the outcome is judged: by the task predicate (sim default) or by the operator (real robots,
or ``judge="operator"``). Sessions resume: see :meth:`TrialRunner.open_session` and docs/trials_db.md.

An outage is never a policy failure: a trial during which the policy stopped answering (the watchdog fired, a
request failed, the server was lost) or the robot faulted is stored ``aborted`` with the cause in ``fault`` and a
note, never judged, and the session stops there with one line (:class:`SessionStopped`): bring the server back (or
fix the robot) and rerun the same command, which resumes and redoes that trial (the sim: on the same seed).

Ctrl-C during a trial stops that trial (end reason ``operator_stop``); a second Ctrl-C (the trial's stop pending,
or between trials: the sim waits GRACE_S before the next one), or SIGTERM, ends the session once the trial is
saved; Ctrl-C at a prompt ends the session (a trial waiting for its judgement is kept as aborted). Every prompt
goes through an :class:`~pushcut.robot.trials.operators.Operator`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pushcut.robot.drivers.can_link import can_interfaces, link_problem, read_can_link
from pushcut.robot.trials.config import RunnerConfig, RunnerError, calibration_summary, check_settings
from pushcut.robot.trials.interrupts import Interrupts
from pushcut.robot.trials.operators import Operator
from pushcut.robot.trials.play import TrialResult, execute, go_ready
from pushcut.robot.trials.recording import TrialRecorder
from pushcut.robot.trials.rig import Rig, build_robot
from pushcut.trials_db.database import SessionInfo, SessionSummary, TrialRecord, TrialsDB

if TYPE_CHECKING:  # pyzmq: imported when a session starts, not with this module
    from pushcut.deploy.client.policy_client import PolicyClient, ServerInfo

GRACE_S = 3.0  # sim: after an operator stop, the next trial starts this much later (time for a second Ctrl-C)
T = TypeVar("T")


class SessionStopped(RunnerError):
    """The session stopped on an outage or a robot fault; the trial is saved as aborted and a rerun redoes it."""


def predicate_outcome(success: bool, end_reason: str) -> str:
    """The sim's outcome: success if the task predicate held; aborted if the trial was cut short from outside
    (operator stop, policy server error); else failure (action limit, fault, safety stop)."""
    if success:
        return "success"
    return "aborted" if end_reason in ("operator_stop", "policy_error") else "failure"


class TrialRunner:
    def __init__(self, config: RunnerConfig, operator: Operator) -> None:
        self.config = config
        self.operator = operator
        self.interrupts = Interrupts(operator.say)
        self._last = TrialResult("", 0, None, None, None, 0, (), None)  # the newest trial's execution

    # ------------------------------------------------------------------ the session
    def run(self) -> SessionSummary:
        """Run (or resume) the session until its trials are judged, the operator ends it, or an error; returns the
        session as saved."""
        from pushcut.deploy.client.policy_client import PolicyClient

        config = self.config
        check_settings(config)  # the operator's typos are named before anything is contacted
        if config.robot == "piper":
            self._check_buses()
        client = PolicyClient(config.server, timeout_s=config.server_timeout_s)
        try:
            info = self._hello(client)
            rig = build_robot(config, info)  # only after the server answered: the robot is untouched before
            try:
                with TrialsDB(config.db) as db:
                    session = self.open_session(db, info)
                    if session.complete:
                        return session
                    rig.connect()
                    with self.interrupts:
                        self._trials(db, session, rig, client, info)
                    return db.session(session.id)
            finally:
                rig.close()
        finally:
            client.close()

    def _check_buses(self) -> None:
        """Both CAN interfaces exist and are up at 1 Mbit/s (read from the system; nothing is opened), before the
        server is asked or anything connects: a wrong name is one line, and nothing moves."""
        for option, name in (("--can-left", self.config.can_left), ("--can-right", self.config.can_right)):
            problem = link_problem(read_can_link(name))
            if problem:
                present = ", ".join(can_interfaces()) or "none"
                raise RunnerError(f"{option} {name}: {problem[0]} (CAN interfaces present: {present}): {problem[1]}; "
                                  "nothing was moved (`pushcut robot check` checks the whole rig)")  # fmt: skip

    def _hello(self, client: PolicyClient) -> ServerInfo:
        from pushcut.deploy.client.policy_client import PolicyError, PolicyTimeout

        try:
            return client.hello(state_dim=14)
        except PolicyTimeout:
            raise RunnerError(
                f"no policy server answers at {self.config.server} within {self.config.server_timeout_s} s; "
                "check that `pushcut serve --checkpoint ... --bind ...` runs there, the host and port, and the "
                "firewall (the robot was not touched)"
            ) from None
        except PolicyError as error:
            raise RunnerError(f"the policy server at {self.config.server} cannot drive this robot: {error}") from None

    def open_session(self, db: TrialsDB, info: ServerInfo) -> SessionSummary:
        """Resume the newest session with the same task, checkpoint label, operator and robot in this database,
        unless ``new_session`` or it is complete; else create one. A resumed session must be served the same
        checkpoint (hash) it started with."""
        c = self.config
        found = None if c.new_session else db.find_session(c.task, c.checkpoint_label, c.operator, c.robot)
        if found is not None:
            self._check_engine(db, found)
            if found.checkpoint_hash and found.checkpoint_hash != info.checkpoint_hash:
                raise RunnerError(
                    f"session #{found.id} ({c.task}, label {c.checkpoint_label!r}) ran checkpoint "
                    f"{found.checkpoint_hash[:12]}, but the server now serves {info.checkpoint_hash[:12]}: serve "
                    "the same checkpoint, or give this one its own --checkpoint-label"
                )
            if c.trials != found.planned_trials:
                db.update_session(found.id, planned_trials=c.trials)
                self.operator.say(f"session #{found.id}: planned trials {found.planned_trials} -> {c.trials}")
                found = db.session(found.id)
            if found.complete:
                self.operator.say(f"session #{found.id} is complete ({found.judged}/{found.planned_trials}, "
                                  f"{found.successes} successes); --new-session starts another")  # fmt: skip
                return found
            if c.seed_start != found.seed_start and c.robot == "sim":
                self.operator.say(f"resuming with the session's seed start {found.seed_start}")
            self.operator.say(f"resuming session #{found.id} at {found.judged}/{found.planned_trials}")
            return found
        settings = {"max_actions": c.max_actions, "action_hz": info.action_hz, "chunk": info.chunk,
                    "chunking": c.chunking, "safety": c.safety, "servo_hz": c.servo_hz,
                    "cameras": sorted(info.cameras), "instruction": c.instruction,
                    "camera_calibration": calibration_summary(c), "engine": c.engine}  # fmt: skip
        session_id = db.create_session(SessionInfo(
            task=c.task, checkpoint_label=c.checkpoint_label, robot=c.robot, operator=c.operator,
            planned_trials=c.trials, judge=c.judged_by, robot_kind="real" if c.robot == "piper" else "sim",
            checkpoint_id=info.checkpoint_id, checkpoint_hash=info.checkpoint_hash, server=c.server,
            seed_start=c.seed_start if c.robot == "sim" else None, settings=json.dumps(settings),
            camera_calibration=json.dumps(info.camera_calibration) if info.camera_calibration else None,
        ))  # fmt: skip
        where = c.robot if c.engine is None else f"{c.robot} ({c.engine})"
        self.operator.say(f"session #{session_id}: {c.task}, {c.checkpoint_label}, {c.trials} trials on {where}")
        return db.session(session_id)

    def _check_engine(self, db: TrialsDB, found: SessionSummary) -> None:
        """A twin session resumes only in the engine it started in (sessions from before the engine was recorded ran
        MuJoCo): one session's trials come from one world."""
        engine = self.config.engine
        if engine is None:
            return
        recorded = db.session_settings(found.id).get("engine") or "mujoco"
        if recorded != engine:
            raise RunnerError(f"session #{found.id} ran its trials in {recorded}, not {engine}: rerun with --sim "
                              f"{recorded} to resume it, or start another with --new-session")  # fmt: skip

    def _trials(self, db: TrialsDB, session: SessionSummary, rig: Rig, client: PolicyClient, info: ServerInfo) -> None:
        out = (self.config.out or self.config.db.parent / "trials") / f"session_{session.id:04d}"
        aborts_in_a_row = 0
        while not session.complete and not self.interrupts.quit:
            k, seed = session.attempts + 1, None
            if rig.sim is not None:
                seed = (session.seed_start or 0) + session.judged
            trial = self.run_trial(k, seed, session, rig, client, info, out, db)
            if trial is None:
                break
            session = db.session(session.id)
            # Aborts the operator asked for (Ctrl-C) say nothing about the setup; the others (server, faults) might.
            if trial.outcome == "aborted" and trial.end_reason != "operator_stop":
                aborts_in_a_row += 1
            elif trial.outcome != "aborted":
                aborts_in_a_row = 0
            rate = f"{session.successes}/{session.judged}" if session.judged else "-"
            self.operator.say(f"trial {k}: {trial.outcome} ({trial.end_reason}, {trial.actions} actions; "
                              f"{self._last.summary()}) - {session.judged}/{session.planned_trials} judged, "
                              f"successes {rate}")  # fmt: skip
            if self._last.interruption():
                self._after_interruption(k, trial, client)
            if trial.end_reason == "operator_stop" and not self.interrupts.quit and not self._human(rig):
                self.operator.say(f"next trial in {GRACE_S:.0f} s (Ctrl-C ends the session)")
                self.interrupts.wait_quit(GRACE_S)
            if aborts_in_a_row >= self.config.max_consecutive_aborts:
                raise RunnerError(f"{aborts_in_a_row} trials in a row were aborted (last: {trial.end_reason}"
                                  f"{': ' + trial.fault if trial.fault else ''}); check the server, the robot "
                                  "and the cameras, then rerun to resume")  # fmt: skip

    def _after_interruption(self, k: int, trial: TrialRecord, client: PolicyClient) -> None:
        """Trial ``k`` was aborted by an outage or a robot fault (saved, not judged). A fault, or a policy server that
        no longer answers, stops the session with one line (:class:`SessionStopped`); a server that answers again
        after a stall lets the session go on, and the next attempt redoes the trial (the same seed)."""
        cause = self._last.interruption()
        again = f" on seed {trial.seed}" if trial.seed is not None else ""
        if self._last.end_reason == "fault":
            fix = "Fix the robot (the arms hold their last command)"
        elif self._server_answers(client):
            self.operator.say(f"trial {k} aborted, not judged: {cause}; the policy server answers again: redoing "
                              f"this trial{again}")  # fmt: skip
            return
        else:
            fix = f"Bring the policy server at {self.config.server} back"
        raise SessionStopped(f"trial {k} aborted, not judged: {cause}. {fix} and rerun the same command: the "
                             f"session resumes and redoes this trial{again}")  # fmt: skip

    def _server_answers(self, client: PolicyClient) -> bool:
        from pushcut.deploy.client.policy_client import PolicyError, PolicyTimeout

        try:
            client.ping()
        except (PolicyTimeout, PolicyError):
            return False
        return True

    # ------------------------------------------------------------------ one trial
    def run_trial(self, k: int, seed: int | None, session: SessionSummary, rig: Rig, client: PolicyClient,
                  info: ServerInfo, out: Path, db: TrialsDB) -> TrialRecord | None:  # fmt: skip
        """Prepare, execute, judge and save attempt ``k``; None when the operator ended the session before it."""
        c = self.config
        human = self._human(rig)
        place = f"trial {session.judged + 1}/{session.planned_trials} (attempt {k})"
        instruction = rig.sim.reset(seed) if rig.sim is not None else c.instruction
        if human:
            scene = f"the twin is reset on seed {seed}" if rig.sim is not None else "set the scene"
            if not self._ask(lambda: self.operator.ready(f"{place}: {scene}; instruction: {instruction!r}")):
                return None
        max_actions = c.max_actions or rig.default_max_actions(info.action_hz)
        rate = c.camera_hz or info.action_hz
        video = c.video_cameras if c.video_cameras is not None else (_video_camera(list(info.cameras)),)
        recorder = TrialRecorder(rig.cameras, rate, out, f"trial_{k:03d}", video=video)
        if self.interrupts.quit or (rig.sim is None and c.home and not self._home(rig, info)):
            return None
        self._new_episode(client)
        started = time.time()
        recorder.start()
        self.interrupts.stop_trial.clear()
        self.interrupts.running = True
        try:
            result = execute(rig, client, info.action_hz, recorder, instruction, self.interrupts.stop_trial,
                             max_actions, safety=c.safety, servo_hz=c.servo_hz, chunking=c.chunking)  # fmt: skip
        finally:
            self.interrupts.running = False
        ended = time.time()
        self._last = result
        data_path, videos = recorder.finish()
        success = rig.sim.success() if rig.sim is not None else False
        suggestion = predicate_outcome(success, result.end_reason) if rig.sim is not None else None
        notes = [n for n in (recorder.camera_error, recorder.video_error) if n]
        cause = result.interruption()
        if cause:  # an outage or a fault says nothing about the policy: never judged
            outcome = "aborted"
            notes.insert(0, f"not judged: {cause}")
        elif c.judged_by == "predicate":
            outcome = suggestion
        else:
            prompt = f"{place} ended: {result.end_reason} after {result.actions} actions"
            if rig.sim is not None:
                prompt += f" (the task predicate says {'success' if success else 'no success'})"
            judgement = self._ask(lambda: self.operator.judge(prompt, suggestion))
            if judgement is None:
                outcome = "aborted"
                notes.append("not judged: the session ended at the prompt")
            else:
                outcome = judgement.outcome
                notes.insert(0, judgement.note)
        notes = [n for n in notes if n]
        trial = TrialRecord(
            k=k, outcome=outcome, judged_by=c.judged_by, started_at=started, ended_at=ended,
            end_reason=result.end_reason, seed=seed, instruction=instruction, note="; ".join(notes),
            actions=result.actions, fault=result.fault or cause, latency_p50_ms=result.latency_p50_ms,
            latency_p95_ms=result.latency_p95_ms, chunks=result.chunks, data_path=db.relative(data_path),
            strategy=rig.sim.strategy() if rig.sim is not None and outcome == "success" else None,
            videos={cam: db.relative(p) for cam, p in videos.items()}, safety_events=result.safety_events,
            ticks=result.ticks, smoothed_ticks=result.smoothed_ticks,
        )  # fmt: skip
        db.add_trial(session.id, trial)
        return trial

    def _home(self, rig: Rig, info: ServerInfo) -> bool:
        """Move the real arms to the ready pose; False when the operator stopped it (the session ends)."""
        self.operator.say("moving the arms to the ready pose")
        self.interrupts.stop_trial.clear()
        self.interrupts.running = True
        try:
            report = go_ready(rig, self.interrupts.stop_trial, info.action_hz, self.config.safety, self.config.servo_hz)
        finally:
            self.interrupts.running = False
        if report.reason == "operator_stop":
            self.interrupts.quit = True
            return False
        if report.reason != "done":
            raise RunnerError(f"the arms did not reach the ready pose ({report.reason}"
                              f"{': ' + report.fault if report.fault else ''}); check the arms and the workspace, "
                              "then rerun to resume")  # fmt: skip
        return True

    def _new_episode(self, client: PolicyClient) -> None:
        """Tell the server a new episode starts (its logs count them); a failure here only warns: the trial's own
        requests will show whether the server is really gone."""
        from pushcut.deploy.client.policy_client import PolicyError, PolicyTimeout

        try:
            client.reset()
        except (PolicyTimeout, PolicyError) as error:
            self.operator.say(f"warning: the policy server did not acknowledge the new episode ({error})")

    def _human(self, rig: Rig) -> bool:
        """Is an operator prompted before each trial (real robot, or operator-judged sim)?"""
        return rig.sim is None or self.config.judged_by == "operator"

    def _ask(self, prompt: Callable[[], T]) -> T | None:
        """Run an operator prompt; None when Ctrl-C or SIGTERM ended the session there."""
        self.interrupts.prompting = True
        try:
            return prompt()
        except (KeyboardInterrupt, EOFError):
            self.interrupts.quit = True
            return None
        finally:
            self.interrupts.prompting = False


def _video_camera(cameras: list[str]) -> str:
    return "head_camera" if "head_camera" in cameras else cameras[0]
