"""Plan: compose the config (Hydra), expand the grid, and give every run its content id."""
