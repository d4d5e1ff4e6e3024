"""The passport registry: a FastAPI service over SQLite or PostgreSQL (``critflow serve``)."""
