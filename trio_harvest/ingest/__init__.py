"""Ingest: websocket transports, connections (reconnect, backoff), the 24 h handover, REST."""
