"""Seed compatibility (filled by the uasyncio issue)."""
