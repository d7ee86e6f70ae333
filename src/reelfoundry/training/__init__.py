"""Training the built-in model: the procedural data set, the training loop, fine-tuning."""
