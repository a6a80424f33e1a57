"""flask-cors (PyPI `flask-cors`), as its documentation configures it.

Usage: python flask_cors_app.py correct|broken PORT [TRUSTED]

TRUSTED (optional) replaces the correct config's origin, for pages on loopback.
"""
import logging
import re
import sys

from flask import Flask
from flask_cors import CORS

mode, port = sys.argv[1], int(sys.argv[2])
trusted = sys.argv[3] if len(sys.argv) > 3 else "https://app.example.com"
app = Flask(__name__)
if mode == "correct":
    # Two origins: with a single literal origin flask-cors 6 sends no
    # `Vary: Origin` although its answer differs between that origin and any
    # other (audit reports missing_vary_origin, rightly).
    CORS(
        app,
        origins=[trusted, "https://admin.example.com"],
        supports_credentials=True,
        methods=["GET", "POST", "PUT"],
        allow_headers=["Content-Type", "Authorization"],
    )
else:
    # An origin regex with unescaped dots and no end anchor: flask-cors
    # matches with re.match, anchored at the start only.
    CORS(
        app,
        origins=[re.compile(r"https://app.example.com")],
        supports_credentials=True,
        methods=["GET", "POST", "PUT"],
        allow_headers=["Content-Type", "Authorization"],
    )


@app.route("/api", methods=["GET", "POST", "PUT", "OPTIONS"])
def api():
    return {"ok": True}


# One line per request would drown the test output.
logging.getLogger("werkzeug").setLevel(logging.ERROR)
app.run(host="127.0.0.1", port=port)
