"""The analytical control plane: a FastAPI service over the lake, the model registry and the jobs.

`create_app(settings)` builds the app; `serve(settings, host, port)` runs it on uvicorn
(`cobranza serve`). API keys are created with `cobranza.api.keys.create_key`.
"""

from cobranza.api.app import ApiOptions, create_app, serve

__all__ = ["ApiOptions", "create_app", "serve"]
