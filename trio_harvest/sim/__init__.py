"""The built-in exchange simulator: an offline stand-in for Binance market streams (USD-M by
default; Spot and COIN-M with ``venue.py``'s profiles).

``market.py`` is the pure, seeded market model; ``server.py`` serves it over websockets in the
exact wire format of the chosen venue. Importing this package imports neither trio nor the
network stack.
"""
