"""Binance USD-M futures: the wire (``decode``, ``streams``, ``listing``), the diff-depth book
rule (``diffbook``), its resync (``booksync``) and the adapter (``adapter.VENUE``)."""
