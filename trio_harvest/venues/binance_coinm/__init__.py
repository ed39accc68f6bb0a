"""Binance COIN-M (delivery futures, ``dstream``/``dapi``): ``wire.py`` (pure)."""
