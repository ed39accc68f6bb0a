"""``python -m trio_harvest report``: one self-contained HTML page about a dataset.

``gather`` reads what the report needs from disk (Parquet footers, file names and sizes, the
``gaps`` kind, the dead letter), never every row; ``coverage`` turns that into tables (pure, no
I/O); ``page`` draws them with Plotly into one HTML file that opens with no network.
"""
