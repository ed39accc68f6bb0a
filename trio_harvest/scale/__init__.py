"""Scale-out: symbols split into shards by rendezvous hashing, N worker processes under one
supervisor per host, and the lock that keeps two processes off the same shard."""
