"""A deterministic simulator of the shop's operational database (the internal source).

It writes customers (with PII), products, orders, order items, returns and web events with an
A/B experiment, day by day, from a seed and a scale knob. See `generate.py`.
"""
