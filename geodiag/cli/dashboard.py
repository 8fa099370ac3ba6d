"""`geodiag dashboard`: the Streamlit dashboard on a store, bound to 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from geodiag.errors import GeodiagError
from geodiag.store import DEFAULT_STORE

APP = Path(__file__).resolve().parents[2] / "app.py"  # beside the package in a checkout


def add_parser(sub) -> None:
    p = sub.add_parser("dashboard", help="open the dashboard on a store (Streamlit, http://127.0.0.1:8501)")
    p.add_argument("--store", default=DEFAULT_STORE, help=f"DuckDB store file (default: {DEFAULT_STORE})")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8501, help="port (default: 8501)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from geodiag.ui.serve import serve  # streamlit: only for this command

    if not APP.exists():
        raise GeodiagError(f"The dashboard's app.py is not at {APP}; run geodiag from a checkout of its repository.")
    os.environ["GEODIAG_STORE"] = args.store
    serve(APP, host=args.host, port=args.port)
    return 0
