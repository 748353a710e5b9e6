"""The project layer: the only code that takes a Project or a database Session (see docs/architecture.md)."""
