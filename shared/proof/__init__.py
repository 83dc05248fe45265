"""Proof that a node's GPUs work: parsers for what the GPU tools print, the CTRF record of a
request's checks, and the Blob store that keeps it (`proofs/{requestId}.json`)."""
