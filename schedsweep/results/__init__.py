"""Results: collect the runs' metrics, rank schedules per budget, compare, render, plot, HTML."""
