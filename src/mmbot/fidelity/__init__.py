"""Fidelity of the synthetic market to a real capture: statistics, autocorrelations and whether a
fixed panel of strategy configurations ranks the same on both (``mmbot data fidelity``)."""
