"""estimate: placeholder package; see docs/architecture.md for what lands here."""
