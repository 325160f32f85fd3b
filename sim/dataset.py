"""Demonstration datasets in RoboTwin 2.0's per-episode HDF5 layout, plus an index, and the reader training uses.

    DIR/
      index.json                      task, env config, format version, one entry per episode (file, seed, length,
                                      instruction); rewritten atomically after every episode
      data/episode<i>.hdf5            one file per kept episode, written to a temp name and renamed when complete
      instructions/episode<i>.json    {"seen": [...], "unseen": [...]} instructions for the episode
      seed.txt                        the kept seeds, one per line (RoboTwin's side file)

    episode<i>.hdf5 (T = number of actions)
      /observation/<camera>/rgb                 (T,) JPEG bytes, fixed-length S<max> (RoboTwin), decode with cv2
      /observation/<camera>/{intrinsic_cv (T,3,3), extrinsic_cv (T,3,4), cam2world_gl (T,4,4)}
      /joint_action/{left_arm (T,6), left_gripper (T,), right_arm (T,6), right_gripper (T,), vector (T,14)}
                                                the commanded joint targets = the actions (RoboTwin semantics)
      /joint_state/vector (T,14)                measured joints when the frame was taken (the policy's proprio)
      /endpose/{left_endpose (T,7), left_gripper (T,), right_endpose (T,7), right_gripper (T,)}
      /privileged/object_positions (T,K,3)   world positions of the task's privileged bodies (Task.privileged_bodies,
                                             named in the attr privileged_bodies): training targets only, never a
                                             policy input; absent in datasets recorded before it existed
      attrs: task, seed, instruction, action_hz, format_version[, privileged_bodies (JSON list)]

Frame t is the observation before action t is applied.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np

FORMAT_VERSION = 1
JPEG_QUALITY = 90
INDEX_FILE = "index.json"
PRIVILEGED_POSITIONS = "privileged/object_positions"


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def encode_jpeg(rgb: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"could not JPEG-encode an image of shape {rgb.shape}")
    return buffer.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("corrupt JPEG frame in the dataset")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class EpisodeRecorder:
    """Collects (observation, action) pairs of one episode in memory, then writes them as one HDF5 file."""

    def __init__(self, cameras: Sequence[str]) -> None:
        self.cameras = tuple(cameras)
        self.frames: dict[str, list[bytes]] = {c: [] for c in self.cameras}
        self.camera_matrices: dict[str, dict[str, list[np.ndarray]]] = {
            c: {"intrinsic_cv": [], "extrinsic_cv": [], "cam2world_gl": []} for c in self.cameras
        }
        self.actions: list[np.ndarray] = []
        self.states: list[np.ndarray] = []
        self.object_positions: list[np.ndarray] = []
        self.endposes: dict[str, list] = {
            "left_endpose": [],
            "left_gripper": [],
            "right_endpose": [],
            "right_gripper": [],
        }

    def add(self, obs: dict[str, Any], action: np.ndarray, object_positions: np.ndarray | None = None) -> None:
        """One timestep: the observation before ``action``; ``object_positions`` (K, 3) is recorded when given
        (at every timestep or at none)."""
        for cam in self.cameras:
            view = obs["observation"][cam]
            self.frames[cam].append(encode_jpeg(view["rgb"]))
            for key, values in self.camera_matrices[cam].items():
                values.append(view[key])
        self.actions.append(np.asarray(action, dtype=np.float64))
        self.states.append(np.asarray(obs["joint_action"]["vector"], dtype=np.float64))
        if object_positions is not None:
            self.object_positions.append(np.asarray(object_positions, dtype=np.float64))
        for key, values in self.endposes.items():
            values.append(obs["endpose"][key])

    def __len__(self) -> int:
        return len(self.actions)

    def write(self, path: Path, attrs: dict[str, Any]) -> None:
        """Write to `path` atomically (temp file + rename): a crash never leaves a partial episode file."""
        tmp = path.with_name(path.name + ".tmp")
        actions = np.stack(self.actions)
        with h5py.File(tmp, "w") as f:
            for key, value in {**attrs, "format_version": FORMAT_VERSION}.items():
                f.attrs[key] = value
            for cam in self.cameras:
                group = f.create_group(f"observation/{cam}")
                longest = max(len(b) for b in self.frames[cam])
                group.create_dataset("rgb", data=np.array(self.frames[cam], dtype=f"S{longest}"))
                for key, values in self.camera_matrices[cam].items():
                    group.create_dataset(key, data=np.stack(values))
            joint = f.create_group("joint_action")
            joint.create_dataset("left_arm", data=actions[:, 0:6])
            joint.create_dataset("left_gripper", data=actions[:, 6])
            joint.create_dataset("right_arm", data=actions[:, 7:13])
            joint.create_dataset("right_gripper", data=actions[:, 13])
            joint.create_dataset("vector", data=actions)
            f.create_dataset("joint_state/vector", data=np.stack(self.states))
            for key, values in self.endposes.items():
                f.create_dataset(f"endpose/{key}", data=np.asarray(values, dtype=np.float64))
            if self.object_positions:
                if len(self.object_positions) != len(actions):
                    raise ValueError(
                        f"object positions were recorded at {len(self.object_positions)} of {len(actions)} timesteps"
                    )
                f.create_dataset(PRIVILEGED_POSITIONS, data=np.stack(self.object_positions))
        os.replace(tmp, path)


@dataclass(frozen=True)
class Episode:
    """One demonstration read back: actions (T,14), states (T,14), frames per camera (T,H,W,3) decoded lazily."""

    path: Path
    seed: int
    instruction: str
    actions: np.ndarray
    states: np.ndarray
    object_positions: np.ndarray | None = None  # (T, K, 3) privileged positions, None in older datasets

    def __len__(self) -> int:
        return len(self.actions)

    def frames(self, camera: str, indices: Sequence[int] | None = None) -> np.ndarray:
        with h5py.File(self.path, "r") as f:
            if f"observation/{camera}/rgb" not in f:
                available = sorted(f["observation"].keys()) if "observation" in f else []
                raise KeyError(f"{self.path.name} has no camera {camera!r}; it has {available}")
            data = f[f"observation/{camera}/rgb"]
            selected = range(len(data)) if indices is None else indices
            return np.stack([decode_jpeg(data[i]) for i in selected])


class DemoDataset:
    """Reader of a directory written by `pushcut sim demo`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        index_path = self.root / INDEX_FILE
        if not index_path.is_file():
            raise FileNotFoundError(f"{index_path} not found: not a pushcut demonstration directory")
        self.index = json.loads(index_path.read_text())
        if self.index.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{index_path}: format_version {self.index.get('format_version')} is not supported "
                f"(expected {FORMAT_VERSION})"
            )
        self.task: str = self.index["task"]
        self.cameras: tuple[str, ...] = tuple(self.index["env_config"]["cameras"])
        self.action_hz: float = self.index["env_config"]["action_hz"]
        # (height, width) of the recorded frames: the camera resolution the policy was trained on
        self.image_shape: tuple[int, int] = (
            int(self.index["env_config"].get("image_height", 240)),
            int(self.index["env_config"].get("image_width", 320)),
        )
        self.entries: list[dict[str, Any]] = self.index["episodes"]

    @property
    def camera_calibration(self) -> dict[str, str] | None:
        """The head camera calibration the demonstrations were rendered with (name and sha256), None for the
        scene's nominal camera: checkpoints trained on the data record it."""
        from pushcut.sim.camera_calibration import summary_of

        return summary_of(self.index["env_config"].get("camera_calibration"))

    def __len__(self) -> int:
        return len(self.entries)

    def episode(self, i: int) -> Episode:
        entry = self.entries[i]
        path = self.root / entry["file"]
        if not path.is_file():
            raise FileNotFoundError(f"episode file {path} listed in {self.root / INDEX_FILE} is missing")
        with h5py.File(path, "r") as f:
            actions = f["joint_action/vector"][:]
            states = f["joint_state/vector"][:]
            positions = f[PRIVILEGED_POSITIONS][:] if PRIVILEGED_POSITIONS in f else None
        if actions.ndim != 2 or actions.shape[1] != 14:
            raise ValueError(f"{path}: joint_action/vector has shape {actions.shape}, expected (T, 14)")
        if positions is not None and (positions.ndim != 3 or len(positions) != len(actions) or positions.shape[2] != 3):
            raise ValueError(
                f"{path}: {PRIVILEGED_POSITIONS} has shape {positions.shape}, expected ({len(actions)}, K, 3)"
            )
        return Episode(path, int(entry["seed"]), entry["instruction"], actions, states, positions)

    def __iter__(self):
        return (self.episode(i) for i in range(len(self)))
