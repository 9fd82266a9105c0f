"""One run's training: the loop, checkpoints, metrics, optimizers, distributed and script runs."""
