"""Seeing a collection: a 2-D map of its chunks with labelled clusters, similar and outlying
documents, and statistics of the questions asked. Reads the store; never writes to it."""
