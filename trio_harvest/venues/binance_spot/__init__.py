"""Binance Spot: ``wire.py`` (pure)."""
