"""The standard test protocol for a model: adherence, a Fréchet distance, speed."""
