"""pushcut.dashboard — see docs/architecture.md."""
