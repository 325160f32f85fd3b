"""pushcut: SimpleVLA-RL-style robot learning, from MuJoCo simulation to dual AgileX Piper arms."""

__version__ = "0.1.0"
