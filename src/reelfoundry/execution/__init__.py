"""Running jobs: the engine loop, executors and the worker process."""
