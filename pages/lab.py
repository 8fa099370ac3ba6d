"""Allocation lab: a stored GID, ID or spectra analysis through a rule and a convention preset, adjusted live (pure
arithmetic on the stored vectors: no model is loaded), compared with a second preset, written as a peft-ready
JSON, and trained through Launch."""

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from geodiag import allocation as alloc
from geodiag.errors import GeodiagError
from geodiag.figures.lab import allocation_plan
from geodiag.lab import analysis_runs, compare_plans, plan_frame, stored_analysis
from geodiag.methods import METHODS
from geodiag.store import Reader
from geodiag.ui import labels, page, store_path
from geodiag.ui.forms import PREFILL

NONE = "(none)"


@st.cache_data(ttl=30, show_spinner=False)
def analysis(store: str, run_id: str):
    return stored_analysis(Reader(store), run_id)


def settings_form(kind: str) -> tuple[alloc.Settings, str]:
    rules = alloc.rules_reading(kind)
    c = st.columns(4)
    rule = c[0].selectbox("Rule", rules, key="lab-rule")
    preset = c[1].selectbox("Preset", list(alloc.PRESETS), key="lab-preset",
                            help="\n\n".join(f"**{p.name}**: {p.summary}" for p in alloc.PRESETS.values()))
    other = c[2].selectbox("Compare with", [NONE, *alloc.PRESETS], key="lab-other")
    r = c[3].number_input("r_ref", 1, 256, 8, key="lab-r", help="LoRA's rank the budget is compared with")
    c = st.columns(6)
    n_max = c[0].selectbox("n_max", [None, 1, 2, 4, 8, 16, 32, 64], key="lab-nmax",
                           format_func=lambda v: "preset's" if v is None else str(v))
    r_min = c[1].number_input("r_min (0: preset's)", 0, 1024, 0, key="lab-rmin")
    r_max = c[2].number_input("r_max (0: preset's)", 0, 1024, 0, key="lab-rmax")
    rank_rounding = c[3].selectbox("rank rounding", alloc.ROUNDINGS, index=2, key="lab-rround")
    block_rounding = c[4].selectbox("block rounding", alloc.ROUNDINGS, key="lab-bround")
    scale = c[5].number_input("budget scale", 0.05, 20.0, 1.0, step=0.05, key="lab-scale")
    settings = alloc.Settings(rule, preset, r=int(r), n_max=n_max, r_min=int(r_min) or None,
                              r_max=int(r_max) or None, rank_rounding=rank_rounding, block_rounding=block_rounding,
                              budget_scale=float(scale), constants=paper_constants(alloc.get_rule(rule)))
    return settings, other


def paper_constants(rule: alloc.Rule) -> tuple[tuple[str, float], ...]:
    """The rule's own numbers, its paper's values pre-filled (the rule's convention, whatever the preset)."""
    if not rule.constants:
        return ()
    c = st.columns(max(4, len(rule.constants)))
    return tuple((k.name, float(c[i].number_input(
        f"{k.name} (paper: {k.value:g})", min_value=float(k.low), max_value=float(min(k.high, 1e6)),
        value=float(k.value), step=0.05, key=f"lab-const-{rule.name}-{k.name}", help=k.help)))
        for i, k in enumerate(rule.constants))


def export_block(plan: alloc.Plan, stored) -> None:
    data = alloc.plan_json(plan, source_run=stored.run_id, model=stored.model)
    text = json.dumps(data, indent=2)
    stem = f"allocation-{plan.settings.rule}-{plan.settings.preset}-{stored.run_id}"
    c = st.columns(3)
    c[0].download_button("Download JSON", text.encode(), file_name=f"{stem}.json", mime="application/json")
    path = Path(store_path()).resolve().parent / "allocations" / f"{stem}.json"
    method = next((m for m, spec in METHODS.items() if spec.rule == plan.settings.rule), None)
    if c[1].button("Train this allocation", type="primary", disabled=method is None,
                   help=f"Saves {path.name} beside the store and opens Launch with it" if method else
                   f"No geodiag method trains the {plan.settings.rule} rule's ranks yet: download the JSON for "
                   "peft.LoraConfig(rank_pattern=..., alpha_pattern=...)"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
        st.session_state[PREFILL] = {"l-kind": "Train", "l-model": stored.model, "l-method": method,
                                     "l-advanced": True, "l-allocation": str(path)}
        st.switch_page("pages/launch.py")
    c[2].caption(f"`geodiag allocate {stored.run_id} --rule {plan.settings.rule} --preset {plan.settings.preset}` "
                 "writes the same file; `peft.LoraConfig(r=..., rank_pattern=..., alpha_pattern=..., "
                 "target_modules=...)` takes it.")


runs, ids = page("Allocation lab")
done = analysis_runs(Reader(store_path()))
if done.empty:
    st.info("No finished analysis in this store: `geodiag analyze gid` (RaLoRA, RaLoRA-Pro, LoRA+GID), "
            "`geodiag analyze id` (GeLoRA) or `geodiag analyze spectra` (alpha, alpha-share, stable-rank) records "
            "what the rules allocate from.")
    st.stop()
names = labels(runs)
run_id = st.selectbox("Analysis", list(done["run_id"]), key="lab-run",
                      format_func=lambda r: f"{names.get(r, r)} · {done.set_index('run_id').loc[r, 'method']}")
try:
    stored = analysis(store_path(), run_id)
    settings, other = settings_form(stored.kind)
    plan = alloc.plan(settings, stored.vectors, stored.shapes)
    second = None if other == NONE else alloc.plan(alloc.Settings(**{**settings.__dict__, "preset": other}),
                                                   stored.vectors, stored.shapes)
except GeodiagError as e:
    st.error(str(e))
    st.stop()

c = st.columns(4)
c[0].metric("parameters (the rule's)", f"{plan.params:,}", f"{plan.params / plan.lora_params - 1:+.1%} vs LoRA",
            delta_color="off")
c[1].metric("through peft (rank_pattern)", f"{plan.peft_params:,}")
c[2].metric(f"LoRA r={settings.r}", f"{plan.lora_params:,}")
if second:
    c[3].metric(f"{other} preset", f"{second.params:,}", f"{second.params - plan.params:+,}", delta_color="off")
frames = [plan_frame(plan)] + ([plan_frame(second)] if second else [])
table = pd.concat(frames, ignore_index=True)
st.plotly_chart(allocation_plan(table), key="lab-figure", config={"displaylogo": False})
if second:
    diff = compare_plans(plan, second)
    st.subheader(f"{settings.preset} → {other}: {len(diff)} of {len(plan.allocations)} modules change")
    st.dataframe(diff, hide_index=True)
with st.expander("Per-module allocation"):
    st.dataframe(plan_frame(plan), hide_index=True)
export_block(plan, stored)
