"""SAPIEN (RoboTwin's engine) as pushcut's second world (issue 26; in progress).

Nothing here imports SAPIEN at import time: `device.import_sapien()` does, after pointing the Vulkan loader at a
device (`device.py`). `arm.py` loads a Piper URDF (written by `pushcut.sim.piper_urdf`, checked by
`pushcut.sim.urdf_layout`) into a SAPIEN scene; `preview.py` renders it with SAPIEN's rasteriser. `rig.py` holds both
arms at their mounts with the scene description's table, floor, wall, risers and lights, driven by MuJoCo's servos
as PhysX joint drives (`drives.py`) through the same `apply_servo_target` / `advance_physics` calls as the MuJoCo env;
`cameras.py` adds the head and wrist cameras with MuJoCo's poses, fields of view and matrices; `looks.py` maps MuJoCo's
colours and lights into SAPIEN's shading and reads SAPIEN's picture back as MuJoCo's display values.
"""
