"""Fault-injection experiments (issue 5): kill storms, restarts, outages, lock contention, bad input, security."""
