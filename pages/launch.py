"""Launch: start `geodiag train` or `geodiag analyze` as a separate process, follow it live, cancel it.

Runs survive closing or reloading the tab: they live in their own process group and the store knows their
PID, so this page finds running runs again from the store alone."""

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from geodiag.errors import GeodiagError
from geodiag.store import Reader
from geodiag.ui import launch as launcher
from geodiag.ui import load_metrics, load_runs, run_record, store_path, through_entry

MAIN_TRAIN = ["steps", "lr", "batch_size", "grad_accum", "max_length", "record_every", "eval_size", "seed"]
ADVANCED_TRAIN = ["subspace_k", "record_gid_every", "train_size", "record_batch", "warmup", "clip", "weight_decay",
                  "device", "dtype", "run_name"]


@st.cache_data(show_spinner="Reading geodiag's options...")
def schema() -> dict:
    return launcher.schema()


def widget(field: dict, key: str, column=st, label: str | None = None):
    """One input for a config field, typed by its default and annotation (a picker when it has choices),
    help text from its metadata."""
    name, default, kind, text = field["name"], field["default"], str(field["type"]), field["help"]
    label = label or name.replace("_", " ")
    if field.get("choices"):
        choices = list(field["choices"])
        return column.selectbox(label, choices, index=choices.index(default), key=key, help=text)
    if isinstance(default, bool) or kind == "bool":
        return st.checkbox(label, value=bool(default), key=key, help=text)
    if isinstance(default, int) and "float" not in kind:
        return st.number_input(label, value=default, step=1, key=key, help=text)
    if isinstance(default, float) or "float" in kind:
        return st.number_input(label, value=float(default or 0.0), format="%g", key=key, help=text)
    if isinstance(default, list):
        value = st.text_input(label, value=",".join(map(str, default)), key=key, help=text)
        return [v.strip() for v in value.split(",") if v.strip()]
    value = st.text_input(label, value="" if default is None else str(default), key=key, help=text)
    return value or None


def changed(fields: list[dict], values: dict) -> dict:
    """Only what differs from the defaults goes on the command line (the run records the full config)."""
    defaults = {f["name"]: f["default"] for f in fields}
    return {k: v for k, v in values.items() if v != defaults.get(k)}


def start(args: list[str]) -> None:
    try:
        job = launcher.spawn(args, Path(store_path()).resolve().parent / "logs")
    except GeodiagError as e:
        st.error(str(e))
        return
    st.session_state.setdefault("launched", []).append(job)
    load_runs.clear()
    st.toast(f"Started process {job.pid}")


through_entry()

st.title("Launch")
try:
    opts = schema()
except GeodiagError as e:
    st.error(str(e))
    st.stop()
train_fields = {f["name"]: f for f in opts["train"]}

train_tab, analyze_tab = st.tabs(["Train", "Analyze"])
with train_tab:
    c1, c2, c3 = st.columns(3)
    model = c1.text_input("Model", "smollm2", key="l-model", help=train_fields["model"]["help"])
    methods = opts["methods"]
    method = c2.selectbox("Method", list(methods), index=list(methods).index("manifold"), key="l-method",
                          format_func=lambda m: f"{m}: {methods[m]['summary']}")
    task = widget(train_fields["task"], "l-task", column=c3, label="Task")
    dataset = c3.text_input("or dataset (JSONL/CSV path)", "", key="l-dataset", help=train_fields["dataset"]["help"])
    st.markdown("**Training** (paper defaults filled in)")
    cols = st.columns(4)
    values = {}
    for i, name in enumerate(MAIN_TRAIN):
        with cols[i % 4]:
            values[name] = widget(train_fields[name], f"l-{name}")
    method_fields = [f for f in methods[method]["options"] if f["name"] != "target_modules"]
    st.markdown(f"**{method} options**")
    mcols = st.columns(4)
    method_values = {}
    for i, f in enumerate(method_fields):
        with mcols[i % 4]:
            method_values[f["name"]] = widget(f, f"l-{method}-{f['name']}")
    targets = next(f for f in methods[method]["options"] if f["name"] == "target_modules")
    with st.expander("Advanced"):
        acols = st.columns(4)
        target_value = acols[0].text_input("target modules", ",".join(targets["default"]), key=f"l-{method}-targets",
                                           help=targets["help"])
        for i, name in enumerate(ADVANCED_TRAIN, start=1):
            with acols[i % 4]:
                values[name] = widget(train_fields[name], f"l-{name}")
        trust = st.checkbox("Trust remote code", value=False, key="l-trust",
                            help="Lets the model repository run its own Python code. Leave off unless you trust it.")
    if st.button("Start training", type="primary", key="l-start"):
        args_values = {"model": model, "method": method, "task": task or None, "dataset": dataset or None,
                       **changed([train_fields[n] for n in values], values),
                       **changed(method_fields, method_values), "store": store_path(),
                       "trust_remote_code": trust}
        targets_list = [t.strip() for t in target_value.split(",") if t.strip()]
        if targets_list != targets["default"]:
            args_values["target_modules"] = targets_list
        start(launcher.command("train", args_values))

with analyze_tab:
    analyze_fields = {f["name"]: f for f in opts["analyze"]}
    kind = st.radio("Analysis", ["gid", "id"], horizontal=True, key="a-kind",
                    format_func=lambda k: {"gid": "GID (RaLoRA): accumulated gradients",
                                           "id": "Intrinsic dimension (GeLoRA): TwoNN profile"}[k])
    shown = ["model", "task", "targets", "batches", "batch_size", "max_length", "rank"] if kind == "gid" else \
        ["model", "task", "tokens", "pooling", "max_length", "gelora_scale"]
    acols = st.columns(4)
    avalues = {}
    for i, name in enumerate(shown):
        with acols[i % 4]:
            avalues[name] = widget(analyze_fields[name], f"a-{kind}-{name}")
    if st.button("Start analysis", type="primary", key="a-start"):
        keep = {"model", "task"}
        args_values = {k: v for k, v in avalues.items() if k in keep or v != analyze_fields[k]["default"]}
        start(launcher.command("analyze", {**args_values, "store": store_path()}, analysis=kind))


@st.fragment(run_every=2)
def live() -> None:
    """Running runs from the store (whoever started them), plus this session's launches that have not
    created a run yet or failed before they could."""
    st.subheader("Running")
    launcher.reap()
    try:
        runs = Reader(store_path()).runs()  # fresh every tick, without emptying every session's cache
    except GeodiagError as e:
        st.info(str(e))
        runs = pd.DataFrame(columns=["run_id", "status", "pid", "name", "kind", "config"])
    running = runs[runs["status"] == "running"]
    if running.empty:
        st.caption("No run is running in this store.")
    for r in running.itertuples():
        with st.container(border=True):
            _running_run(r, run_record(running, r.run_id)["config"])
    for job in st.session_state.get("launched", []):
        if job.pid in set(runs["pid"].dropna().astype(int)):
            continue
        code = launcher.finished(job.pid)
        if code is None:
            st.info(f"Process {job.pid} is starting (loading the model)...")
        elif code != 0:
            st.error(f"Process {job.pid} stopped before creating a run: {launcher.tail(job.log, 1)}")


def _running_run(r, cfg: dict) -> None:
    metrics = load_metrics(store_path(), (r.run_id,), ("loss/lm", "analysis/progress"))
    loss, sweep = (metrics[metrics["name"] == name] for name in ("loss/lm", "analysis/progress"))
    head, button = st.columns([4, 1])
    head.markdown(f"**{r.name}** · {r.kind} · pid {r.pid} · `{r.run_id}`")
    if button.button("Cancel", key=f"cancel-{r.run_id}"):
        try:
            launcher.cancel(r.pid)
            st.toast(f"Cancelling {r.name}: it stops at the next step boundary and keeps its data.")
        except GeodiagError as e:
            st.error(str(e))
    st.progress(*launcher.progress(r.kind, r.method, cfg, loss, sweep))
    if len(loss) > 1:
        fig = go.Figure(go.Scatter(x=loss["step"], y=loss["value"], mode="lines", name="LM loss"))
        fig.update_layout(height=220, margin={"l": 10, "r": 10, "t": 10, "b": 10}, xaxis_title="step",
                          yaxis_title="LM loss")
        st.plotly_chart(fig, key=f"live-{r.run_id}")


live()
