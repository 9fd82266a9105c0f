"""schedsweep: which learning-rate schedule is best for my model at my compute budget?

Data flows one way: conf/*.yaml -> config -> plan -> launch -> train (+ metrics) -> report.
"""

__version__ = "0.1.0"
