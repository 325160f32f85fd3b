"""pushcut.deploy — see docs/architecture.md."""
