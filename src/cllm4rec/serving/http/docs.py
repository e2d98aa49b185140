"""``/docs`` without the internet: Swagger UI's files served from the ``fastapi-offline`` package (a Swagger
UI 5 that reads OpenAPI 3.1, which FastAPI writes; ``swagger-ui-bundle`` ships 4.x, which cannot), and the API
key declared in the OpenAPI document, so the docs page's "Authorize" button sends it with every try."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from cllm4rec.serving.http.guard import log

ASSETS = "/docs-assets"
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def add_docs(app: FastAPI, *, keyed: bool) -> None:
    """Serve ``/docs`` from local assets (the app is built with ``docs_url=None, redoc_url=None``)."""
    try:
        import fastapi_offline
    except ImportError:
        log.warning("/docs is off: the fastapi-offline package is missing (pip install 'cllm4rec[serve]')")
        return
    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount(ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    if keyed:

        def openapi() -> dict[str, Any]:
            if app.openapi_schema is None:
                schema = get_openapi(
                    title=app.title, version=app.version, description=app.description, routes=app.routes
                )
                schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
                schema["security"] = [{"bearer": []}, {"apiKey": []}]
                app.openapi_schema = schema
            return app.openapi_schema

        app.openapi = openapi  # type: ignore[method-assign]
