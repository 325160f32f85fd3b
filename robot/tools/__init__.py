"""`pushcut robot ...`: operator tools for the real arms (camera discovery, demo replay, head-camera alignment)."""
