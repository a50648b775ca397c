"""Local-first retrieval-augmented generation: query side (retrieval, answering, API, CLI)."""

__version__ = "0.1.0"
