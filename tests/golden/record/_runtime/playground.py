"""The playground: a page at ``/playground`` that runs the programs in a browser.

Notes:
1. The page is static. Its files (``static/``) are the same for every service:
   nothing of the spec is rendered into them, so nothing needs escaping. The
   page learns the programs, their input forms and their streams from
   ``GET /v1/programs`` at run time and inserts every text with
   ``textContent``.
2. Every file is sent with a strict Content-Security-Policy: scripts, styles
   and connections only from the service itself, no inline script or style,
   no frames, no form posts. The page needs nothing else: it uses no CDN and
   works offline.
3. The page and its files are open (served without an API key), so that a
   user can load it and type the key; every call it makes to the API carries
   the key, and the page keeps it in the browser tab's ``sessionStorage`` only.
   ``config.json`` tells the page whether keys are on, so that it asks for one
   before its first call instead of after a 401.
"""

import json
from importlib import resources

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

PATH = "/playground"
ASSETS = f"{PATH}/"

# The page's files by the name they are served under, with their media types.
FILES = {
    "index.html": "text/html; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
    "form.js": "text/javascript; charset=utf-8",
    "stream.js": "text/javascript; charset=utf-8",
    "view.js": "text/javascript; charset=utf-8",
    "snippets.js": "text/javascript; charset=utf-8",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # A new service version may change the page; a stale copy would call old endpoints.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _read(name: str) -> bytes:
    return (resources.files(__package__) / "static" / name).read_bytes()


# Read once at import: a missing file fails the start, not a user's first visit.
_CONTENT = {name: _read(name) for name in FILES}


@router.get(PATH)
async def read_playground() -> Response:
    return _file("index.html")


@router.get(ASSETS + "config.json")
async def read_playground_config(request: Request) -> Response:
    """What the page must know before its first API call: whether to ask for a key."""
    config = {"title": request.app.title, "api_keys": bool(request.app.state.settings.api_keys)}
    return Response(json.dumps(config), media_type="application/json", headers=HEADERS)


@router.get(ASSETS + "{name}")
async def read_playground_file(name: str) -> Response:
    if name not in FILES:
        raise HTTPException(404)
    return _file(name)


def _file(name: str) -> Response:
    return Response(_CONTENT[name], media_type=FILES[name], headers=HEADERS)
