"""The built-in text-to-video model: a small diffusion transformer, its text encoder and pipeline."""
