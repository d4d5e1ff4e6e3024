"""The ASGI application for uvicorn workers: the database comes from CRITFLOW_DATABASE_URL."""

from critflow.registry.api import create_app

app = create_app()
