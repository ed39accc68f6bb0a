"""The Binance USD-M futures venue adapter: stream names, routes and frame decoding."""
