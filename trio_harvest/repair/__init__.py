"""Repair: continuity, gaps as data, REST backfill and resume after a restart."""
