"""Launch: start `geodiag train`, `geodiag sweep` or `geodiag analyze` as a separate process, follow it live, cancel
it (a sweep as one item: its cells, steps, ETA and phase; Cancel stops every cell; Resume reruns a stopped one).

The forms are rendered from the configs' option schema (the same one the CLI flags come from), imported
in-process: the configs are torch-free. Runs survive closing or reloading the tab: they live in their own
process group and the store knows their PID, so this page finds running runs again from the store alone."""

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from geodiag.config import AnalyzeConfig, TrainConfig
from geodiag.data import task_names
from geodiag.errors import GeodiagError
from geodiag.lab.progress import progress_of
from geodiag.methods import METHODS
from geodiag.names import ANALYSIS_PROGRESS, LOSS_LM
from geodiag.options import schema
from geodiag.store import Reader
from geodiag.sweep.options import SweepOptions
from geodiag.sweep.spec import ALIASES, PER_CELL
from geodiag.ui import launch as launcher
from geodiag.ui import load_metrics, load_runs, run_record, selected_rates, store_path, sweeps, through_entry
from geodiag.ui.forms import PREFILL, changed, grid, initial, widget

SIDEBAR = {"store"}  # the store comes from the sidebar, not the form
ANALYSES = {"gid": "GID (RaLoRA): accumulated gradients", "id": "Intrinsic dimension (GeLoRA): TwoNN profile"}


@st.cache_data(show_spinner=False)
def tasks() -> list[str]:
    return task_names()


def start(args: list[str]) -> None:
    try:
        job = launcher.spawn(args, Path(store_path()).resolve().parent / "logs")
    except GeodiagError as e:
        st.error(str(e))
        return
    st.session_state.setdefault("launched", []).append(job)
    load_runs.clear()
    st.toast(f"Started process {job.pid}")


def checked(validate) -> bool:
    """Run the configs' own validation before spawning anything: a bad value is one sentence here."""
    try:
        validate()
    except GeodiagError as e:
        st.error(str(e))
        return False
    return True


def analysis_runs() -> list[str | None]:
    """None (measure first) and every finished analysis in the store, for `from_analysis` pickers."""
    try:
        runs = load_runs(store_path())
    except GeodiagError:
        return [None]
    done = runs[(runs["kind"] == "analysis") & (runs["status"] == "finished")]
    return [None, *done["run_id"]]


def learning_rate(method: str, model: str) -> tuple[float, str]:
    """The rate the store's newest sweep selected for the method on this model, else the method's registered one
    (it learns the default task on SmolLM2 there), and where it came from."""
    try:
        chosen = selected_rates(store_path(), model).get(method)
    except GeodiagError:
        chosen = None
    if chosen:
        return chosen, f"{chosen:g}, selected on the dev items by this store's newest sweep on {model}"
    return METHODS[method].lr, f"{METHODS[method].lr:g}, a rate at which it learns the default task on SmolLM2"


def train_form() -> None:
    specs = [s for s in schema(TrainConfig) if s.group != "file" and s.name not in SIDEBAR]
    by_name = {s.name: s for s in specs}
    head = st.columns([1, 2, 1])
    with head[0]:
        model = widget(by_name["model"], "l-model")
    with head[1]:
        method = widget(by_name["method"], "l-method", choices=list(METHODS))
        st.caption(METHODS[method].summary)
    with head[2]:
        values = {"task": widget(by_name["task"], "l-task", choices=tasks()),
                  "dataset": widget(by_name["dataset"], "l-dataset")}
    own = {s.name: s for s in schema(METHODS[method].config)}
    method_specs = [s for s in own.values() if s.name != "target_modules"]
    defaults = {"target_modules": own["target_modules"].default}  # the run's option, the method's default
    choices = {"from_analysis": analysis_runs()}
    st.markdown("**Training**")
    rate, source = learning_rate(method, model)
    values |= grid([s for s in specs if s.group == "basic" and s.name not in ("model", "method", "lr", *values)], "l")
    values["lr"] = widget(by_name["lr"], f"l-lr-{method}-{model}", default=rate)  # a key per method: its own rate
    st.caption(f"Learning rate pre-filled for {method}: {source}.")
    st.markdown(f"**{method} options**")
    options = grid([s for s in method_specs if s.group == "basic"], f"l-{method}", choices=choices)
    if st.toggle("Advanced options", key="l-advanced", value=initial("l-advanced", False)):  # a quicker first paint
        values |= grid([s for s in specs if s.group == "advanced"], "l", defaults=defaults)
        options |= grid([s for s in method_specs if s.group == "advanced"], f"l-{method}", choices=choices)
    if st.button("Start training", type="primary", key="l-start"):
        run = {"model": model, "method": method, **changed(specs, values, defaults), "store": store_path()}
        picked = changed(method_specs, options)
        if checked(lambda: (TrainConfig.from_dict(run), METHODS[method].config.from_dict(picked))):
            st.session_state.pop(PREFILL, None)  # the allocation lab's prefill has served
            start(launcher.command("train", {**run, **picked}))


def analyze_form() -> None:
    kind = st.radio("Analysis", list(ANALYSES), horizontal=True, key="a-kind", format_func=ANALYSES.get)
    specs = [s for s in schema(AnalyzeConfig) if s.applies_to(kind) and s.name not in SIDEBAR]
    choices = {"task": tasks()}
    values = grid([s for s in specs if s.group == "basic"], f"a-{kind}", choices=choices)
    if st.toggle("Advanced options", key=f"a-{kind}-advanced"):
        values |= grid([s for s in specs if s.group == "advanced"], f"a-{kind}")
    if st.button("Start analysis", type="primary", key="a-start"):
        args = {"model": values["model"], "task": values["task"], **changed(specs, values), "store": store_path()}
        if checked(lambda: AnalyzeConfig.from_dict(args)):
            start(launcher.command("analyze", args, analysis=kind))


SWEEP_HEAD = ("model", "task", "dataset")
# what the form starts from: a small comparison at LoRA r=8 that finishes on a laptop (the CLI's defaults stand for
# every field not named here)
FORM_DEFAULTS = {"methods": ["lora", "ralora", "manifold"], "seeds": ["0"], "budget": "lora-r=8", "steps": 100}


def sweep_form() -> None:
    """Rendered from the sweep's option schema (its CLI flags come from the same) and the train options."""
    own = {s.name: s for s in schema(SweepOptions)}
    train = [s for s in schema(TrainConfig) if s.group != "file" and s.name not in (*PER_CELL, "store")]
    by = {s.name: s for s in train}
    head = st.columns([1, 2, 1])
    values = {}
    with head[0]:
        values["model"] = widget(by["model"], "s-model")
    with head[1]:
        methods = widget(own["methods"], "s-methods", choices=[*METHODS, *ALIASES], default=FORM_DEFAULTS["methods"])
    with head[2]:
        values["task"] = widget(by["task"], "s-task", choices=tasks())
    basic = [s for s in own.values() if s.group == "basic" and s.name != "methods"]
    options = {"methods": methods, **grid(basic, "s", defaults=FORM_DEFAULTS)}
    st.markdown("**Training, for every cell**")
    values |= grid([s for s in train if s.group == "basic" and s.name not in SWEEP_HEAD], "s", defaults=FORM_DEFAULTS)
    if st.toggle("Advanced options", key="s-advanced"):
        values |= grid([s for s in [*train, *own.values()] if s.group == "advanced" or s.name == "dataset"], "s")
    options |= {k: values.pop(k) for k in list(values) if k in own}
    args = launcher.command("sweep", {**changed(list(own.values()), options), **changed(train, values),
                                      "model": values["model"], "store": store_path()})
    planned = st.session_state.get("s-plan")
    if st.button("Plan the sweep", key="s-plan-button", type="secondary" if planned else "primary"):
        with st.spinner("Planning: sizing every method on the model (and timing a few steps when this store has "
                        "no run on it)..."):
            try:
                st.session_state["s-plan"] = planned = (args, launcher.plan(args))
            except GeodiagError as e:
                st.session_state.pop("s-plan", None)
                st.error(str(e))
                return
    if not planned:
        return
    if planned[0] != args:
        st.caption("The options have changed since the last plan: plan again to start.")
        return
    sweeps.plan_view(planned[1])
    if st.button("Start the sweep", type="primary", key="s-start"):
        st.session_state.pop("s-plan", None)
        start(args)



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
        runs = pd.DataFrame(columns=["run_id", "status", "pid", "name", "kind", "config", "sweep"])
    records = sweep_records()
    live_sweeps = records[records["status"] == "running"]
    running = runs[(runs["status"] == "running") & ~runs["sweep"].isin(live_sweeps["run_id"])]
    if running.empty and live_sweeps.empty:
        st.caption("No run is running in this store.")
    for rec in live_sweeps.to_dict("records"):
        with st.container(border=True):
            sweeps.sweep_item(rec, progress_of(Reader(store_path()), rec, runs))
            for r in runs[(runs["status"] == "running") & (runs["sweep"] == rec["run_id"])].itertuples():
                running_run(r, run_record(runs, r.run_id)["config"], compact=True)
    for r in running.itertuples():
        with st.container(border=True):
            running_run(r, run_record(running, r.run_id)["config"])
    stopped = records[records["status"].isin(["cancelled", "failed", "interrupted", "stale"])].head(5)
    if not stopped.empty:
        st.subheader("Stopped sweeps")
    for rec in stopped.to_dict("records"):
        with st.container(border=True):
            sweeps.stopped_item(rec, progress_of(Reader(store_path()), rec, runs), resume)
    for job in st.session_state.get("launched", []):
        if job.pid in set(runs["pid"].dropna().astype(int)):
            continue
        code = launcher.finished(job.pid)
        if code is None:
            st.info(f"Process {job.pid} is starting (loading the model)...")
        elif code != 0:
            st.error(f"Process {job.pid} stopped before creating a run: {launcher.tail(job.log, 1)}")


def sweep_records() -> pd.DataFrame:
    try:
        return Reader(store_path()).sweeps()
    except GeodiagError:
        return pd.DataFrame(columns=["run_id", "status", "pid", "name", "config", "message"])


def resume(record: dict) -> None:
    try:
        job = launcher.resume(run_record(sweep_records(), record["run_id"])["config"], sweeps.log_dir())
    except GeodiagError as e:
        st.error(str(e))
        return
    st.session_state.setdefault("launched", []).append(job)
    st.toast(f"Resuming sweep {record['name']} (process {job.pid}): finished cells are skipped.")


def running_run(r, cfg: dict, *, compact: bool = False) -> None:
    metrics = load_metrics(store_path(), (r.run_id,), (LOSS_LM, ANALYSIS_PROGRESS))
    loss, sweep = (metrics[metrics["name"] == name] for name in (LOSS_LM, ANALYSIS_PROGRESS))
    if compact:  # a cell inside its sweep's item: its name and how far it is
        fraction, text = launcher.progress(r.kind, r.method, cfg, loss, sweep)
        st.progress(fraction, text=f"{r.name}: {text}")
        return
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


through_entry()
st.title("Launch")
kind = st.segmented_control("What to start", ["Train", "Sweep", "Analyze"], default=initial("l-kind", "Train"),
                            key="l-kind")
if kind == "Analyze":  # only the chosen form is drawn
    analyze_form()
elif kind == "Sweep":
    sweep_form()
else:
    train_form()
live()
