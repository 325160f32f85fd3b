"""Helpers shared by test modules (not fixtures): expert actions to play open loop."""

from __future__ import annotations

import numpy as np


def click_bell_expert_actions(seed: int, still: int) -> np.ndarray:
    """The click_bell expert's actions on ``seed`` until the press, then ``still`` repeats of the last one."""
    from pushcut.sim import make

    env = make("click_bell", cameras=())
    env.reset(seed=seed)
    actions = []
    for action in env.task.expert(env):
        actions.append(action)
        env.step(action)
        if env.success:
            break
    env.close()
    return np.array(actions + [actions[-1]] * still)
