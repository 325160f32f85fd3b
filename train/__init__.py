"""pushcut.train — see docs/architecture.md."""
