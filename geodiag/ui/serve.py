"""Serving the dashboard (`geodiag dashboard`, `make app`): Streamlit's own command line, told first that
app.py routes every page through st.navigation.

Streamlit decides once per server process whether a `pages/` folder beside the main script means its legacy
multipage routing; until some session has called st.navigation it routes the first browser session that way
(a different link list, the page run without app.py's sidebar). geodiag keeps its views in pages/, so it says
so before the server starts. A bare `streamlit run app.py` still works: each page re-routes through app.py
on its first run (geodiag.ui.selection.through_entry). A test watches both, to catch a Streamlit upgrade
that changes this internal.
"""

from __future__ import annotations

import sys
from pathlib import Path


def serve(app: Path, *, host: str = "127.0.0.1", port: int = 8501) -> None:
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli

    PagesManager.uses_pages_directory = False
    sys.argv = ["streamlit", "run", str(app), "--server.address", host, "--server.port", str(port),
                "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
                "--server.fileWatcherType", "none"]  # a dashboard, not a script being edited: no file polling
    cli.main()
