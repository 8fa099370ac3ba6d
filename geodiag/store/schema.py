"""The store's tables. One long-format metrics table keyed by (run, step, metric, module, index) holds
every diagnostic, so adding a metric never changes the schema (TensorBoard/MLflow style)."""

SCHEMA_VERSION = 1
DEFAULT_STORE = "runs/geodiag.duckdb"

SWEEP_KIND = "sweep"  # a sweep's own record in `runs` (its cells are train runs naming it in config.sweep)
RUN_STATUSES = ("running", "finished", "failed", "interrupted", "cancelled")

DDL = [
    """CREATE TABLE IF NOT EXISTS geodiag_meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY,
        name VARCHAR,
        kind VARCHAR,              -- train | analysis | import | sweep
        method VARCHAR,
        model VARCHAR,
        task VARCHAR,
        status VARCHAR,
        config JSON,
        started_at TIMESTAMP,
        ended_at TIMESTAMP,
        trainable_params BIGINT,
        total_params BIGINT,
        host VARCHAR,
        pid INTEGER,
        geodiag_version VARCHAR,
        message VARCHAR            -- why a run failed or was interrupted, in one sentence
    )""",
    """CREATE TABLE IF NOT EXISTS metrics (
        run_id VARCHAR NOT NULL,
        step BIGINT NOT NULL,
        wall_time DOUBLE,          -- seconds since the run started
        name VARCHAR NOT NULL,     -- e.g. gate/effective_rank, spectrum/singular_value
        module VARCHAR,            -- e.g. model.layers.3.self_attn.q_proj; NULL for run-level scalars
        layer INTEGER,
        module_type VARCHAR,       -- q, k, v, o, gate, up, down, ...
        idx INTEGER,               -- position inside a vector-valued metric (singular value k, bin); NULL else
        value DOUBLE
    )""",
    # spool batch files already folded into `metrics` but not yet deleted (see store/ingest.py)
    """CREATE TABLE IF NOT EXISTS ingested (file VARCHAR PRIMARY KEY)""",
]

RUN_COLUMNS = (
    "run_id", "name", "kind", "method", "model", "task", "status", "config", "started_at", "ended_at",
    "trainable_params", "total_params", "host", "pid", "geodiag_version", "message",
)
METRIC_COLUMNS = ("run_id", "step", "wall_time", "name", "module", "layer", "module_type", "idx", "value")

