"""schedsweep: which learning-rate schedule is best for my model at my compute budget?

Data flows one way: conf/*.yaml -> config -> plan -> launch -> train (+ metrics) -> report.
"""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # `schedsweep.Sweep` without importing it (and yaml) for every `schedsweep --help`
    if name == "Sweep":
        from schedsweep.sweep.api import Sweep

        return Sweep
    raise AttributeError(f"module 'schedsweep' has no attribute {name!r}")
