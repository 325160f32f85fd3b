"""The world as engine-neutral data: the task's objects and the scene around them (issue 26).

Each engine builds its world from a :class:`SceneDescription` (MuJoCo: :mod:`pushcut.sim.mujoco_world`; SAPIEN:
``pushcut.sim.sapien``). Conventions are MuJoCo's, written down here so that any engine can read them:

- frames: z up, metres, quaternions (w, x, y, z); a geom's ``pos`` and orientation are in its body's frame, given
  as ``euler`` (intrinsic x-y-z rotations in radians) or ``quat`` (normalised by the engine), or neither;
- sizes: box = half extents (3); cylinder and capsule = (radius, half length) along the geom's z axis; sphere =
  (radius,); ellipsoid = semi-axes (3); plane = (half x, half y, grid spacing);
- mass: a geom without ``mass`` weighs piper_geometry.GEOM_DENSITY_KG_M3 times its volume; a body with an
  ``inertial`` takes that instead of its geoms' masses;
- body motion: "free" = moved by physics (a free joint), "static" = placed by the env between episodes and never moved
  by physics (MuJoCo: a mocap body; SAPIEN: a kinematic actor), "fixed" = part of the scene (the table);
- contact: a named class (CONTACT_CLASSES), never per-task friction numbers; each engine maps the classes to its
  parameters once;
- recolour: geoms of one recolour group get one random colour per episode (domain randomisation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pushcut.sim import piper_spec as spec

Vec3 = tuple[float, float, float]
RGBA = tuple[float, float, float, float]

# Contact classes (parameters per engine, in one table each):
#   world    - the scene's default material (table, wall, static objects): MuJoCo friction 1, condim 3
#   grippy   - objects the grippers lift: friction 1.5 with torsional friction (condim 4)
#   slippery - RoboTwin's scene material (friction 0.5, condim 4) governing every contact of the object
#   ceramic  - smooth bowls: friction 0.3, condim 4
#   visual   - no collision at all (decoration)
CONTACT_CLASSES = ("world", "grippy", "slippery", "ceramic", "visual")
SIZE_COUNTS = {"box": 3, "cylinder": 2, "capsule": 2, "sphere": 1, "ellipsoid": 3, "plane": 3}
MOTIONS = ("free", "static", "fixed")
TABLE_TOP_GEOM = "table_top"  # the table's geom that is its surface (and shows a randomised texture)


@dataclass(frozen=True)
class Geom:
    """One primitive shape of a body (module docstring for the conventions); ``name`` "" = unnamed."""

    name: str
    kind: str
    size: tuple[float, ...]
    pos: Vec3 = (0.0, 0.0, 0.0)
    rgba: RGBA = (0.5, 0.5, 0.5, 1.0)
    euler: Vec3 | None = None
    quat: tuple[float, float, float, float] | None = None
    mass: float | None = None
    contact: str = "world"
    recolour: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SIZE_COUNTS:
            raise ValueError(f"geom {self.name!r}: unknown kind {self.kind!r}; expected one of {sorted(SIZE_COUNTS)}")
        if len(self.size) != SIZE_COUNTS[self.kind]:
            raise ValueError(f"geom {self.name!r}: a {self.kind} needs {SIZE_COUNTS[self.kind]} sizes, got {self.size}")
        if self.euler is not None and self.quat is not None:
            raise ValueError(f"geom {self.name!r}: give euler or quat, not both")
        if self.contact not in CONTACT_CLASSES:
            raise ValueError(f"geom {self.name!r}: unknown contact class {self.contact!r}; expected {CONTACT_CLASSES}")

    def half_height(self) -> float:
        """Half its height when it stands upright at its body's origin (its own z along the world's)."""
        if self.kind in ("box", "ellipsoid"):
            return float(self.size[2])
        if self.kind == "cylinder":
            return float(self.size[1])
        if self.kind == "capsule":
            return float(self.size[1] + self.size[0])
        return float(self.size[0])


@dataclass(frozen=True)
class Inertial:
    """A body's mass properties given explicitly: centre of mass (body frame), mass, principal moments."""

    pos: Vec3
    mass: float
    diaginertia: Vec3


@dataclass(frozen=True)
class Body:
    """A rigid body of primitive geoms at ``pos`` (its nominal pose; the env places it each episode)."""

    name: str
    motion: str
    pos: Vec3
    geoms: tuple[Geom, ...]
    inertial: Inertial | None = None

    def __post_init__(self) -> None:
        if self.motion not in MOTIONS:
            raise ValueError(f"body {self.name!r}: unknown motion {self.motion!r}; expected one of {MOTIONS}")
        if not self.geoms:
            raise ValueError(f"body {self.name!r} has no geoms")


@dataclass(frozen=True)
class TaskObjects:
    """What a task adds to the scene: its bodies, and its recolour groups in the order colours are drawn."""

    bodies: tuple[Body, ...]
    recolour_groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        used = {g.recolour for b in self.bodies for g in b.geoms if g.recolour is not None}
        if used != set(self.recolour_groups) or len(set(self.recolour_groups)) != len(self.recolour_groups):
            raise ValueError(
                f"recolour groups {self.recolour_groups} must list each group the geoms use once: {sorted(used)}"
            )

    def group_geoms(self, group: str) -> list[str]:
        """Names of the geoms of one recolour group, in description order."""
        return [g.name for b in self.bodies for g in b.geoms if g.recolour == group]


@dataclass(frozen=True)
class Light:
    """A light of the scene: ``directional`` (sun-like, along ``dir``) or a spot at ``pos`` aimed along ``dir``."""

    name: str
    pos: Vec3
    dir: Vec3
    diffuse: Vec3
    directional: bool = False


@dataclass(frozen=True)
class Camera:
    """A fixed camera: position, its x (right) and y (up) axes in world coordinates (it looks down its -z), fovy."""

    name: str
    pos: Vec3
    xyaxes: tuple[float, float, float, float, float, float]
    fovy_deg: float


@dataclass(frozen=True)
class TableTexture:
    """A procedural table-top texture for domain randomisation: a two-colour gradient or checker, tiled ``repeat``."""

    pattern: str
    rgb1: Vec3
    rgb2: Vec3
    repeat: tuple[float, float]


@dataclass(frozen=True)
class SceneDescription:
    """The whole world except the arms' own geometry (piper_geometry): built once per env by an engine."""

    name: str
    timestep: float
    world_geoms: tuple[Geom, ...]  # fixed to the world: floor, wall, risers
    table: Body  # "fixed"; its geom TABLE_TOP_GEOM is the surface; randomisation lowers the whole body
    lights: tuple[Light, ...]
    ambient: Vec3  # light everywhere (MuJoCo: the headlight's ambient)
    headlight: Vec3  # diffuse light from the viewer (MuJoCo's headlight), randomised in intensity
    cameras: tuple[Camera, ...]  # the head camera (wrist cameras ride on the arms)
    table_textures: tuple[TableTexture, ...]
    distractors: tuple[Body, ...]  # "static" clutter slots, parked below the floor until placed
    objects: TaskObjects
    arms: tuple[spec.ArmMount, ...] = field(default=spec.DUAL_PIPER_MOUNTS)

    def bodies(self) -> tuple[Body, ...]:
        """Every body (table, distractors, task objects) in build order."""
        return (self.table, *self.distractors, *self.objects.bodies)

    def body(self, name: str) -> Body:
        for body in self.bodies():
            if body.name == name:
                return body
        raise KeyError(f"no body {name!r} in scene {self.name!r}; bodies: {[b.name for b in self.bodies()]}")

    def camera(self, name: str) -> Camera:
        for camera in self.cameras:
            if camera.name == name:
                return camera
        raise KeyError(f"no camera {name!r} in scene {self.name!r}")
