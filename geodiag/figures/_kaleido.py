"""Child process for static export: reads [{fig, path, opts}, ...] as JSON on stdin and writes every file
in one Chromium session. Run by geodiag.figures.export with a timeout."""

import json
import sys

import kaleido

if __name__ == "__main__":
    kaleido.write_fig_from_object_sync(json.load(sys.stdin))
