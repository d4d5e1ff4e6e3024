"""The ASGI application for uvicorn workers: the database comes from CRITFLOW_DATABASE_URL, the
signing key from CRITFLOW_REGISTRY_KEY. A worker without the registry's key refuses to start (and
exits with uvicorn's start-up failure code, so the supervisor stops instead of restarting it)."""

import sys

from uvicorn.config import STARTUP_FAILURE

from critflow.errors import CritflowError
from critflow.server.api import create_app

try:
    app = create_app()
except CritflowError as exc:
    print(f"critflow registry worker not started:\n{exc}", file=sys.stderr)
    raise SystemExit(STARTUP_FAILURE) from None
