"""Condition IR and the two matching back ends (generated Python, durable_rules)."""
