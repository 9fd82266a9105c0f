"""Shared prefixes: which runs train the same first steps, the forks they branch from, Slurm segments."""
