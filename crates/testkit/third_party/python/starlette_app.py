"""Starlette's CORSMiddleware, served by uvicorn.

Usage: python starlette_app.py correct|broken PORT [TRUSTED]

TRUSTED (optional) replaces the correct config's origin, for pages on loopback.
"""
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.routing import Route

mode, port = sys.argv[1], int(sys.argv[2])
trusted = sys.argv[3] if len(sys.argv) > 3 else "https://app.example.com"
common = dict(
    allow_credentials=True,
    allow_methods=["GET", "POST", "PUT"],
    allow_headers=["Content-Type", "Authorization"],
)
if mode == "correct":
    cors = dict(allow_origins=[trusted], **common)
else:
    # "any subdomain of example.com", written without the dot boundary:
    # https://evilexample.com matches too.
    cors = dict(allow_origin_regex=r"https://.*example\.com", **common)


async def api(request):
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[Route("/api", api, methods=["GET", "POST", "PUT"])],
    middleware=[Middleware(CORSMiddleware, **cors)],
)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
