"""`make bench`: every benchmark, each timing ours and the reference side by side in one run."""

from bench.metrics import main

if __name__ == "__main__":
    raise SystemExit(main())
