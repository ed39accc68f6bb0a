"""The write-ahead journal of raw frames: segment format, the journal itself (append in
memory on the loop, group commit in a worker thread), the checkpoint, restart replay, the raw
archive and the disk probe. Importing the package imports nothing else."""
