"""How a chunk of policy actions becomes joint commands: one definition for training, evaluation and the robot.

numpy only (the torch-free, mujoco-free robot side imports it, like :mod:`pushcut.sim.piper_spec`):

- :mod:`~pushcut.sim.execution.limits`: :class:`MotionLimits`, the servo rate, joint speed, acceleration, envelope
  margin and smoothing window of the execution, the Piper's numbers defined once (the safety filter's defaults are
  these numbers: it never allows less than the execution asks for, nor more);
- :mod:`~pushcut.sim.execution.plan`: the command timeline: piecewise-linear interpolation between actions, smoothed
  over one action period, stale actions dropped and crossfaded where a chunk arrives late (the robot's async mode);
- :mod:`~pushcut.sim.execution.rate`: the rate profile: per servo tick, speed and acceleration limits with braking
  before the envelope and onto the target (also the safety filter's rate layer, with the filter's limits);
- :mod:`~pushcut.sim.execution.servo`: :class:`ChunkServo`, plan + profile with their state: ``play(chunk, now)``,
  then ``command(t)`` once per servo tick. ``DualPiperEnv`` steps its physics under it; the robot's
  ``ChunkExecutor`` sends what it returns through the safety filter.
"""

from pushcut.sim.execution.limits import PIPER_MOTION, SERVO_HZ, MotionLimits
from pushcut.sim.execution.servo import ChunkServo

__all__ = ["PIPER_MOTION", "SERVO_HZ", "ChunkServo", "MotionLimits"]
