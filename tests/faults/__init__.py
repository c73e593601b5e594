"""Fault suite: a package, so that its stack (package-scoped fixture) stops after its last test."""
