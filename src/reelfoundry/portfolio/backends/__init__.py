"""Backends: one self-contained module per way of turning parameters into frames, registered by name."""
