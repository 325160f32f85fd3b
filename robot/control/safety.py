"""The safety filter every command passes before it reaches the arms: pure functions, no I/O, no clock, no globals.

    safety = SafetyConfig.piper_default()            # or SafetyConfig.first_run() on a new setup
    state = FilterState.at_rest(robot.get_state().vector)
    state, events = filter_command(state, proposed, dt, safety)
    robot.send_action(state.command)

Layers, in this order (each sees the output of the one before):

1. finite — a NaN/inf anywhere in the proposal: the whole target becomes the last command (hold). Nothing
   non-finite is ever forwarded.
2. envelope — joints clamped to :mod:`pushcut.sim.piper_spec`'s limits shrunk by ``joint_margin_rad`` (the same
   numbers as the MuJoCo model), grippers to [0, 1].
3. rate — per dimension, the step from the last command keeps |velocity| <= max speed and |acceleration| <= max
   acceleration, brakes in time to stop inside the envelope (so reaching a limit never needs a jerk), and
   approaches the target no faster than it can stop on it (a jump in the proposals gives a smooth move without
   overshoot). Grippers: a speed limit only.
4. geometry — TCP workspace box and inter-arm capsule clearance, braking or holding
   (:mod:`pushcut.robot.control.safety_geometry`).

``dt`` is the time between two commands (the executor passes its nominal servo period, which is conservative when
a tick is late). The filter needs a little state (the last command, its velocity, the last target, where forward
kinematics last ran), so it takes and returns an immutable :class:`FilterState` rather than only the last command.

Guarantees (property-tested in tests/test_safety.py), for any stream of proposals, starting at rest from a command
inside the envelope, the box and the clearance: every command is finite and inside them; no step exceeds
``max speed * dt``; no change of step exceeds ``max accel * dt^2`` except a geometric hard stop. A start outside
(the Piper's REST pose lies on the j2/j3 limits, i.e. outside the margin) is led inside and never gets worse. A
proposal that is safe and slow passes bit-for-bit unchanged. Every change larger than ``report_tolerance`` becomes
a :class:`SafetyEvent` naming its reason, the action dimensions and the values before and after the layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from pushcut.robot.control.safety_config import ARM_INDICES, GRIPPER_INDICES, FilterLimits, SafetyConfig
from pushcut.robot.control.safety_geometry import GeometryCache, guard
from pushcut.sim import piper_spec as spec
from pushcut.sim.execution.rate import rate_limit

__all__ = ["ChunkRejected", "FilterState", "ROUTINE_REASONS", "Reason", "SafetyConfig", "SafetyEvent",
           "filter_command", "validate_chunk"]  # fmt: skip

_GRIPPERS = frozenset(int(i) for i in GRIPPER_INDICES)


class Reason(str, Enum):
    """Why a command was changed or execution stopped (the filter's and the executor's reason codes)."""

    NON_FINITE = "non_finite"  # NaN/inf in a chunk or command: held
    JOINT_LIMIT = "joint_limit"  # clamped to the envelope, or braking before it
    VELOCITY = "velocity"
    ACCELERATION = "acceleration"
    GRIPPER_RANGE = "gripper_range"
    GRIPPER_RATE = "gripper_rate"
    WORKSPACE = "workspace"  # TCP outside the box: brake, then hold
    ARM_DISTANCE = "arm_distance"  # arms' capsules too close: brake, then hold
    # Executor interventions (pushcut.robot.control.executor).
    CHUNK_REJECTED = "chunk_rejected"  # wrong shape or type: the whole chunk refused
    WATCHDOG = "watchdog"  # no fresh chunk in time: hold position
    STARVED = "starved"  # the plan ran out before the next chunk: hold position
    POLICY_ERROR = "policy_error"
    FAULT = "fault"
    OPERATOR_STOP = "operator_stop"


@dataclass(frozen=True)
class SafetyEvent:
    """One intervention: the layer's input (``proposed``) and output (``result``) on the affected dimensions
    (``indices`` into the 14-D action, see :attr:`names`). ``time`` is set by the executor (the filter has no clock)."""

    reason: Reason
    indices: tuple[int, ...] = ()
    proposed: tuple[float, ...] = ()
    result: tuple[float, ...] = ()
    detail: str = ""
    time: float | None = None
    ticks: int = 1  # consecutive servo ticks the executor merged into this event (values: the first tick's)
    end: float | None = None  # time of the last of them

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.ACTION_NAMES[i] for i in self.indices)

    def __str__(self) -> str:
        values = ", ".join(f"{n} {p:.4g}->{r:.4g}" for n, p, r in zip(self.names, self.proposed, self.result))
        span = ""
        if self.ticks > 1:
            span = f" ({self.ticks} ticks" + (f", {self.end - self.time:.2f} s)" if self.end and self.time else ")")
        return f"{self.reason.value}: {self.detail}" + (f" [{values}]" if values else "") + span


# The rate layer's routine work: shaping a path the arms can follow. Counted per trial (ticks smoothed), never an
# event an operator has to read; every other reason is an intervention and is kept as an event.
ROUTINE_REASONS = frozenset({Reason.VELOCITY, Reason.ACCELERATION, Reason.GRIPPER_RATE})


class ChunkRejected(ValueError):
    """A chunk that cannot be a (k, 14) array of actions; the whole chunk is refused."""


@dataclass(frozen=True, eq=False)
class FilterState:
    """What the filter remembers between ticks. ``command`` is the command to send (and, on the next call, the
    last one sent); ``velocity`` its step per second; ``target`` the sanitised proposal (its change is the target's
    velocity); ``geometry`` where forward kinematics last ran."""

    command: np.ndarray
    velocity: np.ndarray
    target: np.ndarray
    geometry: GeometryCache | None = None

    @classmethod
    def at_rest(cls, command: np.ndarray) -> FilterState:
        """Start from a measured or commanded 14-D vector, not moving."""
        command = np.array(command, dtype=float)
        if command.shape != (spec.ACTION_DIM,) or not np.isfinite(command).all():
            raise ValueError(f"the start command must be 14 finite values, got {command!r}")
        return cls(command, np.zeros(spec.ACTION_DIM), command.copy())


def validate_chunk(chunk: np.ndarray, hold: np.ndarray) -> tuple[np.ndarray, list[SafetyEvent]]:
    """A policy chunk as float64 ``(k, 14)``, safe to interpolate. :class:`ChunkRejected` unless it is a non-empty
    numeric (k, 14) array. A row with a NaN/inf is replaced by the row before it (the first row by ``hold``, the
    last command): the robot holds instead of following it. Values far outside the limits are left to the filter."""
    try:
        actions = np.array(chunk, dtype=float)
    except (TypeError, ValueError) as error:
        raise ChunkRejected(f"chunk is not numeric: {error}") from None
    if actions.ndim != 2 or actions.shape[0] < 1 or actions.shape[1] != spec.ACTION_DIM:
        raise ChunkRejected(f"chunk must have shape (k >= 1, {spec.ACTION_DIM}), got {actions.shape}")
    finite = np.isfinite(actions)
    if finite.all():
        return actions, []
    bad_rows = np.flatnonzero(~finite.all(axis=1))
    dims = tuple(int(i) for i in np.flatnonzero(~finite.all(axis=0)))
    for row in bad_rows:
        actions[row] = actions[row - 1] if row > 0 else hold
    rows = ", ".join(str(int(r)) for r in bad_rows[:10]) + (" ..." if len(bad_rows) > 10 else "")
    event = SafetyEvent(Reason.NON_FINITE, dims, detail=f"non-finite action(s) in rows {rows} of {len(actions)}: held")
    return actions, [event]


def filter_command(
    previous: FilterState, proposed: np.ndarray, dt: float, config: SafetyConfig
) -> tuple[FilterState, list[SafetyEvent]]:
    """Apply the layers (module docstring) to one proposed 14-D command, ``dt`` seconds after ``previous``.
    Returns the new state (send ``state.command``) and the interventions."""
    if not dt > 0.0:
        raise ValueError(f"dt must be positive, got {dt}")
    target = np.array(proposed, dtype=float)
    if target.shape != (spec.ACTION_DIM,):
        raise ValueError(f"a command has {spec.ACTION_DIM} values, got shape {target.shape}")
    lim = config.limits
    tol = config.report_tolerance
    last = previous.command
    events: list[SafetyEvent] = []

    # 1. finite: hold everything rather than guess which values of a broken proposal are meaningful.
    if not np.isfinite(target).all():
        bad = np.flatnonzero(~np.isfinite(target))
        events.append(_event(Reason.NON_FINITE, bad, target, last, "non-finite proposal: holding the last command"))
        target = last.copy()

    # 2. envelope.
    clamped = np.minimum(np.maximum(target, lim.low), lim.high)
    if (clamped != target).any() and len(moved := np.flatnonzero(np.abs(clamped - target) > tol)):
        joints = [i for i in moved if i not in _GRIPPERS]
        grippers = [i for i in moved if i in _GRIPPERS]
        if joints:
            events.append(_event(Reason.JOINT_LIMIT, joints, target, clamped, "clamped to the joint limits - margin"))
        if grippers:
            events.append(_event(Reason.GRIPPER_RANGE, grippers, target, clamped, "clamped to [0, 1]"))
    target = clamped

    # 3. rate.
    command, velocity = _rate_limit(previous, target, dt, lim)
    if command is not target:
        _rate_events(events, previous, target, command, velocity, dt, lim, tol)

    # 4. geometry.
    cache = None
    if lim.geometry is not None:
        guarded, cache, findings = guard(
            lim.geometry, last, previous.velocity, command, velocity, lim.max_accel * dt, dt, previous.geometry
        )
        if findings:
            before, command = command, guarded
            velocity = (command - last) / dt
            for finding in findings:
                dims = np.concatenate([ARM_INDICES[6 * a : 6 * a + 6] for a in finding.arms])
                reason = Reason.WORKSPACE if finding.reason == "workspace" else Reason.ARM_DISTANCE
                events.append(_event(reason, dims, before, command, f"{finding.action}: {finding.detail}"))
    return FilterState(command, velocity, target, cache), events


def _rate_limit(
    previous: FilterState, target: np.ndarray, dt: float, lim: FilterLimits
) -> tuple[np.ndarray, np.ndarray]:
    """Layer 3: the command (``target`` itself when nothing limits) and its velocity: the execution's rate profile
    (:func:`pushcut.sim.execution.rate.rate_limit`, braking before the envelope and onto the target) with the
    filter's limits."""
    return rate_limit(previous.command, previous.velocity, previous.target, target, dt, lim)


def _rate_events(
    events: list[SafetyEvent], previous: FilterState, target: np.ndarray, command: np.ndarray,
    velocity: np.ndarray, dt: float, lim: FilterLimits, tol: float,
) -> None:  # fmt: skip
    lagging = np.flatnonzero(np.abs(command - target) > tol)
    groups: dict[Reason, list[int]] = {}
    for i in lagging:
        if i in _GRIPPERS:
            reason = Reason.GRIPPER_RATE
        elif abs(velocity[i]) >= lim.max_speed[i] * (1.0 - 1e-9):
            reason = Reason.VELOCITY
        elif abs(velocity[i] - previous.velocity[i]) < lim.max_accel[i] * dt * (1.0 - 1e-9) and (
            _near_limit(previous.command[i], velocity[i], dt, lim, i)
        ):
            reason = Reason.JOINT_LIMIT
        else:
            reason = Reason.ACCELERATION
        groups.setdefault(reason, []).append(int(i))
    details = {
        Reason.GRIPPER_RATE: "gripper speed limit",
        Reason.VELOCITY: f"joint speed limited to {lim.max_speed[0]:g} rad/s",
        Reason.JOINT_LIMIT: "braking before the joint limit",
        Reason.ACCELERATION: f"joint acceleration limited to {lim.max_accel[0]:g} rad/s^2",
    }
    for reason, dims in groups.items():
        events.append(_event(reason, dims, target, command, details[reason]))


def _near_limit(last: float, velocity: float, dt: float, lim: FilterLimits, i: int) -> bool:
    """Whether joint ``i`` moving at ``velocity`` is being held back by its braking distance to a limit."""
    room = (lim.high[i] - last) if velocity > 0 else (last - lim.low[i])
    return abs(velocity) * dt + velocity * velocity * lim.inv_accel[i] / 2.0 >= room - 1e-9


def _event(reason: Reason, dims, before: np.ndarray, after: np.ndarray, detail: str) -> SafetyEvent:
    dims = [int(i) for i in dims]
    return SafetyEvent(reason, tuple(dims), tuple(float(before[i]) for i in dims),
                       tuple(float(after[i]) for i in dims), detail)  # fmt: skip
