"""ReelFoundry: a self-hostable generative-video platform."""

__version__ = "0.1.0"
