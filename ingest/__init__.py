"""Ingestion side: documents on disk -> loaded text -> chunks -> embeddings -> the store."""
