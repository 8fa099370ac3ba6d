"""`geodiag dashboard`: the Streamlit dashboard on a store, bound to 127.0.0.1 unless told otherwise.

Streamlit's own command line runs it, told first that app.py routes every page through st.navigation.
Streamlit decides once per server process whether a `pages/` folder beside the main script means its legacy
multipage routing, and until some session has called st.navigation it routes the first browser session that
way (a different link list; the page run without app.py's sidebar). geodiag keeps its views in pages/, so it
says so before the server starts. A bare `streamlit run app.py` still works: each page re-routes through
app.py on its first run (geodiag.ui.selection.through_entry). A browser test watches the navigation a fresh
server's first session receives, to catch a Streamlit upgrade that changes this internal.
"""

from __future__ import annotations

import argparse
import os
import sys
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
    if not APP.exists():
        raise GeodiagError(f"The dashboard's app.py is not at {APP}; run geodiag from a checkout of its repository.")
    os.environ["GEODIAG_STORE"] = args.store
    serve(APP, host=args.host, port=args.port)
    return 0


def serve(app: Path, *, host: str, port: int) -> None:
    # streamlit is imported here, for this command only; geodiag.ui is first imported by app.py, in the runtime
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli

    PagesManager.uses_pages_directory = False
    sys.argv = ["streamlit", "run", str(app), "--server.address", host, "--server.port", str(port),
                "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
                "--server.fileWatcherType", "none"]  # a dashboard, not a script being edited: no file polling
    cli.main()
