"""Storage: the store seam, writer threads, encodings, partitions, publish gate, recovery, inventory."""
