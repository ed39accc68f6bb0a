"""The built-in exchange simulator: an offline stand-in for Binance USD-M market streams.

``market.py`` is the pure, seeded market model; ``server.py`` serves it over websockets in the
exact Binance wire format. Importing this package imports neither trio nor the network stack.
"""
