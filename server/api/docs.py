"""/docs: the OpenAPI document in Swagger UI, every file served by this server. Nothing comes from a CDN, so
the page works without internet and tells no one else who reads it; the CSP allows this origin only (the
start-up script is a file, not inline). ReDoc is off: one docs page, and ReDoc needs inline styles."""

from __future__ import annotations

from html import escape
from importlib.resources import files
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from server.api.headers import html_headers
from server.core.errors import NotFound

router = APIRouter(include_in_schema=False)

_SWAGGER_UI: Final = Path(str(files("fastapi_offline") / "static"))
_OURS: Final = Path(__file__).parent / "static"
# name -> (file, media type); the only files served under /docs/assets.
ASSETS: Final = {
    "swagger-ui-bundle.js": (_SWAGGER_UI / "swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": (_SWAGGER_UI / "swagger-ui.css", "text/css; charset=utf-8"),
    "swagger-init.js": (_OURS / "swagger-init.js", "text/javascript; charset=utf-8"),
}
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'"
)


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    """Swagger UI for this API."""
    root = escape(str(request.scope.get("root_path", "")).rstrip("/"))
    openapi = f"{root}{request.app.openapi_url}"
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Nahbar API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{root}/docs/assets/swagger-ui.css">
</head>
<body>
<noscript><p>These API docs need JavaScript. The OpenAPI document itself is at
<a href="{openapi}">{openapi}</a>.</p></noscript>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{root}/docs/assets/swagger-ui-bundle.js"></script>
<script src="{root}/docs/assets/swagger-init.js"></script>
</body>
</html>
"""
    return HTMLResponse(page, headers=html_headers(f"{CSP}; base-uri 'none'") | {"Cache-Control": "no-cache"})


@router.get("/docs/assets/{name}")
def asset(name: str) -> FileResponse:
    """One of Swagger UI's files, or the script that starts it."""
    found = ASSETS.get(name)
    if found is None:
        raise NotFound(f"No such file of the API docs; they use {', '.join(sorted(ASSETS))}.")
    path, media_type = found
    headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
    return FileResponse(path, media_type=media_type, headers=headers)
