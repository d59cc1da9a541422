"""``/docs``: Swagger UI for the OpenAPI document, its assets served from the
``swagger-ui-py`` package, so the page works with no network (FastAPI's own ``/docs``
loads them from a CDN and is blank offline; ``create_app`` turns that one off).

``swagger-ui-py`` ships Swagger UI 5, which reads the OpenAPI 3.1 document FastAPI writes
(``swagger-ui-bundle`` ships 4.15, which refuses it). Only its static files are used: the
package is located, not imported (its import wires handlers for other web frameworks).
"""

from __future__ import annotations

import importlib.util
import mimetypes
from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)


def _assets() -> Path:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (pip install swagger-ui-py)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


ASSETS: Final = _assets()
# the files the page loads; nothing else of the package is served
SERVED: Final = frozenset(
    {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"}
)
INIT_JS: Final = b"""window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
"""
PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>driftwarden API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script>
</body>
</html>
"""


@router.get("/docs")
async def docs() -> HTMLResponse:
    return HTMLResponse(PAGE)


@router.get("/docs/assets/{name}")
async def asset(name: str) -> Response:
    if name == "init.js":
        return Response(INIT_JS, media_type="text/javascript")
    if name not in SERVED:
        return Response(status_code=404)
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(
        (ASSETS / name).read_bytes(),
        media_type=kind,
        headers={"Cache-Control": "public, max-age=86400"},
    )
