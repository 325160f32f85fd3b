"""pushcut.robot — see docs/architecture.md."""
