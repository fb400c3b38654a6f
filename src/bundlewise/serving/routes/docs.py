"""API docs that work offline: Swagger UI (``/docs``) and ReDoc (``/redoc``) with their assets
served from the installed ``fastapi-offline`` package, never from a CDN."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from bundlewise.serving.middleware import ApiError
from bundlewise.serving.routes.dashboard import page_headers

router = APIRouter(include_in_schema=False)

ASSETS = "/docs/assets"
_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


@functools.cache
def _asset_dir() -> Path:
    try:
        return Path(str(resources.files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        raise ImportError(
            "the API docs need fastapi-offline: pip install 'bundlewise[serve]'"
        ) from None


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="bundlewise API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon.png",
    )
    html = bytes(page.body).decode()
    return HTMLResponse(html, headers=page_headers(html))


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    page = get_redoc_html(
        openapi_url="/openapi.json",
        title="bundlewise API",
        redoc_js_url=f"{ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS}/favicon.png",
        with_google_fonts=False,
    )
    html = bytes(page.body).decode()
    return HTMLResponse(html, headers=page_headers(html))


@router.get(ASSETS + "/{name}")
async def asset(name: str) -> FileResponse:
    if name not in _FILES:
        raise ApiError(404, "not_found", f"no such asset: {name}")
    return FileResponse(_asset_dir() / name, headers={"Cache-Control": "public, max-age=86400"})
