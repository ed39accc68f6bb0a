"""What the Binance venues beside USD-M (Spot, COIN-M) share: the table of wire facts a venue is
described by, the book and trade sequencing checks, backfill paging and the listing parse.

Each venue package (``binance_spot``, ``binance_coinm``) binds these to its own facts in its
``wire.py``. Pure: no trio, no I/O, no clock.
"""
