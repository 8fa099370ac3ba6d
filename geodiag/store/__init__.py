"""DuckDB store behind a narrow writer (append batches) and a narrow reader (tidy frames).

Data flow: collectors -> metrics -> **store** -> figures -> pages. Nothing here imports torch.
"""

from geodiag.store.reader import Reader, parsed_config
from geodiag.store.schema import DEFAULT_STORE, RUN_STATUSES, SCHEMA_VERSION, SWEEP_KIND
from geodiag.store.writer import Writer, new_run_id

__all__ = ["DEFAULT_STORE", "RUN_STATUSES", "SCHEMA_VERSION", "SWEEP_KIND", "Reader", "Writer", "new_run_id",
           "parsed_config"]
