"""Operator tools for the real arms (`pushcut robot ...`): pre-flight check, cameras, replay, alignment."""
