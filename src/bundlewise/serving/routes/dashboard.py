"""The merchant dashboard: its page (with security headers), its summary, and ``/``."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bundlewise.serving.deps import Reader, StateDep
from bundlewise.serving.schemas import ERRORS

router = APIRouter(tags=["dashboard"])

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def page_headers(html: str) -> dict[str, str]:
    """Security headers of an HTML page of ours: a CSP that allows only the page's own inline
    scripts (by hash) and requests to this server, no framing, no sniffing, no referrer."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    csp = (
        "default-src 'none'; "
        f"script-src 'self' {hashes}; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; "
        "font-src 'self' data:; "
        "connect-src 'self'; "
        "worker-src 'self' blob:; "
        "base-uri 'none'; "
        "form-action 'self'; "
        "frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


@functools.cache
def _dashboard() -> tuple[str, dict[str, str]]:
    html = (resources.files("bundlewise") / "templates" / "dashboard.html").read_text(
        encoding="utf-8"
    )
    return html, page_headers(html)


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=307)


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
async def dashboard() -> HTMLResponse:
    html, headers = _dashboard()
    return HTMLResponse(html, headers=headers)


@router.get("/v1/dashboard/summary", responses=ERRORS)
async def dashboard_summary(_: Reader, state: StateDep) -> Response:
    """Guardrails in force and the offers of the first customers, for the dashboard (built once
    per model)."""
    snap = state.snapshot
    cached = state.summary_cache.get(id(snap))
    if cached is None:
        pricing = snap.config.pricing
        customers = snap.customer_ids(200)
        body = {
            "model_version": snap.model_version,
            "guardrails": {
                "min_margin": pricing.min_margin,
                "max_discount": pricing.max_discount,
                "fairness_band": pricing.fairness_band,
                "price_endings": f"{list(pricing.price_ending_residues)} mod "
                f"{pricing.price_ending_modulus}",
                "discount_budget": pricing.discount_budget,
                "segment_only": pricing.segment_only,
            },
            "offers": [o for c in customers for o in snap.customer_offers(c, 50)[0]],
        }
        cached = json.dumps(body, separators=(",", ":")).encode()
        state.summary_cache = {id(snap): cached}
    return Response(cached, media_type="application/json")
