"""mmbot: market making with exact per-fill edge attribution, self-tuning soak runs and a KPI gate."""

__version__ = "0.1.0"
