"""`make bench`: every benchmark, each timing ours and the reference side by side in one run.

python -m bench [--only metrics,store,engine,gid,scale,intruders,evaluation,spectra,pages] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform

import torch

from bench import metrics
from bench.metrics import RESULTS

SUITES = ("metrics", "store", "engine", "gid", "scale", "intruders", "evaluation", "spectra", "pages")


def run_store(quick: bool) -> dict:
    from bench.store import bench_store

    r = bench_store(total_rows=1_000_000 if quick else 10_000_000)
    print(f"store ingest: {r['rows']:,} spooled rows folded in {r['ingest_s']:.2f} s -> {r['rows_per_s'] / 1e6:.2f}M "
          f"rows/s (goal >= 1M/s); figure query on the {r['rows'] / 1e6:.0f}M-row store ({r['store_mb']:.0f} MB): "
          f"median {r['query_ms_median']:.0f} ms, max {r['query_ms_max']:.0f} ms for {r['query_rows']:,} rows "
          f"(goal <= 200 ms)")
    return r


def run_engine(quick: bool) -> dict:
    from bench.engine import bench_lm_head, bench_recording, bench_step_time

    model = "tiny" if quick else "smollm2"
    st = bench_step_time(model, steps=3 if quick else 6)
    print(f"step time on {model} (batch 2 x accum 8): ManifoldLoRA {st['manifold_step_s']:.2f} s vs peft LoRA at "
          f"the same ranks {st['ranks']} {st['lora_step_s']:.2f} s -> {st['ratio']:.3f}x (goal <= 1.05x; paper 1.12x)")
    head = bench_lm_head(model, steps=2 if quick else 6)
    print(f"LoRA step on {model}: full logits {head['full_step_s']:.2f} s vs the LM head on the labelled positions "
          f"{head['labelled_step_s']:.2f} s -> {head['ratio']:.3f}x faster (losses agree to "
          f"{head['loss_gap_on_record_batch']:.1e})")
    rec = bench_recording(model, steps=10 if quick else 20)
    print(f"recording every {rec['record_every']} steps on {model}: {rec['recording_s']:.1f} s of recording "
          f"({rec['per_record_s']:.2f} s per record) in {rec['train_s']:.0f} s of {rec['steps']} training steps -> "
          f"{rec['ratio']:.3f}x (goal <= 1.03x)")
    return {"step_time": st, "lm_head": head, "recording": rec}


def run_gid(quick: bool) -> dict:
    from bench.gid import bench_gid

    model = "tiny" if quick else "smollm2"
    r = bench_gid(model, batches=4 if quick else 16)
    s, a = r["sweep"], r["all_gradients"]
    print(f"GID pass on {model} (q,k,v,o of every layer, {r['batches']} batches of 4): {s['seconds']:.1f} s, peak "
          f"RSS {s['peak_rss_mb']:.0f} MB ({s['peak_rss_mb'] - s['after_load_rss_mb']:.0f} MB above the loaded "
          f"model) vs holding every gradient: {a['seconds']:.1f} s, {a['peak_rss_mb']:.0f} MB "
          f"({a['peak_rss_mb'] - a['after_load_rss_mb']:.0f} MB above) -> {r['time_ratio']:.2f}x time, "
          f"{r['peak_rss_ratio']:.2f}x peak RSS, {r['extra_rss_ratio']:.1f}x extra memory; same GIDs: {r['same_gid']}")
    print(f"GID peak memory on {model}: {r['measured_above_imports_mb']:.0f} MB above the interpreter and imports vs "
          f"the formula's {r['formula_mb']:.0f} MB (model {s['formula_model_mb']:.0f} + accumulators "
          f"{s['formula_accumulators_mb']:.0f} + one gradient) + {r['activations_mb']:.0f} MB of activations "
          f"(the same backward passes without accumulators) -> "
          f"{r['measured_over_formula_plus_activations']:.2f}x")
    return r


def run_scale(quick: bool) -> dict:
    from bench.scale import bench_ddp_cpu, bench_throughput

    model = "tiny" if quick else "smollm2"
    t = bench_throughput(model, steps=6 if quick else 14)
    print(f"LoRA training on {model} (r={t['r']} on q,v; batch 2 x accumulation 8; {t['steps_timed']} steps timed): "
          f"geodiag train {t['geodiag_step_s']:.2f} s/step (recording every 10 steps included) vs transformers "
          f"Trainer + peft {t['trainer_step_s']:.2f} s/step -> {t['ratio']:.3f}x (goal >= 1.15x)")
    d = bench_ddp_cpu(model, steps=4 if quick else 8)
    print(f"DDP on the CPU ({model}, 16 sequences a step): torchrun 2 processes x 1 thread {d['ddp_2x1_step_s']:.2f} "
          f"s/step vs 1 process x 2 threads {d['single_1x2_step_s']:.2f} s/step -> {d['ratio']:.2f}x (no goal on 2 "
          "cores)")
    return {"throughput": t, "ddp_cpu": d}


def run_intruders(quick: bool) -> dict:
    from bench.intruders import bench_intruders

    model = "tiny" if quick else "smollm2"
    r = bench_intruders(model)
    print(f"intruder dimensions per record on {model} ({r['modules']} modules, top 10): Lanczos on W + ΔW "
          f"{r['record_s']:.2f} s vs a dense SVD per module {r['dense_record_s']:.2f} s -> {r['ratio']:.1f}x; W's "
          f"SVDs once per run {r['start_s']:.2f} s; same counts: {r['same_counts']}")
    print(f"one {r['large_d']}x{r['large_d']} module: {r['large_record_s']:.2f} s vs dense SVD "
          f"{r['large_dense_s']:.1f} s -> {r['large_ratio']:.0f}x (top-10 vectors agree to |cos| >= "
          f"{r['large_vectors_agree']:.6f})")
    return r


def run_evaluation(quick: bool) -> dict:
    from bench.evaluation import bench_eval_cost, bench_item_overhead, bench_item_rows

    model = "tiny" if quick else "smollm2"
    c = bench_eval_cost(model, n_test=64 if quick else 512, n_dev=16 if quick else 128)
    print(f"evaluation on {model}: {c['test_items']} test items in {c['test_s']:.1f} s ({c['test_items_per_s']:.1f} "
          f"items/s; accuracy {c['test_accuracy']:.3f}), {c['dev_items']} dev items in {c['dev_s']:.1f} s")
    o = bench_item_overhead(model, steps=4 if quick else 20, eval_size=16 if quick else 512,
                            dev_size=8 if quick else 128)
    print(f"per-item records on {model} ({o['item_rows_per_run']:,} rows a run; {o['steps']} steps, {o['eval_size']} "
          f"test + {o['dev_size']} dev items evaluated twice): {o['with_items_s']:.1f} s vs "
          f"{o['without_items_s']:.1f} s a run without them -> {o['ratio']:.3f}x (goal <= 1.03x)")
    r = bench_item_rows(n_test=64 if quick else 512, n_dev=16 if quick else 128)
    run_s = 2 * (c["test_s"] + c["dev_s"]) + o["without_items_s"]
    print(f"per-item rows alone: {r['rows']:,} rows written and folded in {r['seconds']:.2f} s, "
          f"{100 * r['seconds'] / run_s:.2f}% of a run's two evaluations plus the run above")
    return {"cost": c, "item_overhead": o, "item_rows": r}


def run_spectra(quick: bool) -> dict:
    from bench.spectra import bench_spectra

    r = bench_spectra("tiny" if quick else "smollm2")
    if r["weightwatcher"] is None:
        print(f"pretrained spectra on {r['model']}: {r['modules']} modules in {r['ours_s']:.1f} s; WeightWatcher is "
              "not installed (pip install weightwatcher==0.7.7), so nothing to compare with")
        return r
    print(f"pretrained spectra on {r['model']} ({r['modules']} projections): geodiag {r['ours_s']:.1f} s vs "
          f"WeightWatcher {r['weightwatcher']} analyze(mp_fit=True) {r['ww_s']:.1f} s for its {r['ww_modules']} "
          f"matrices -> {r['ratio']:.1f}x ({r['ratio_per_module']:.1f}x per module); agreement: alpha within 0.02 "
          f"{r['alpha_agree']:.0%} (max gap {r['alpha_max_gap']:.2g}), stable rank within 1% "
          f"{r['stable_rank_agree']:.0%}, spikes within one {r['spikes_agree']:.0%} (max gap {r['spikes_max_gap']})")
    return r


def run_pages(quick: bool) -> dict:
    from bench.pages import bench_pages

    r = bench_pages(copies=4 if quick else 44)
    print(f"pages: the sample store ({len(r['small'])} pages) against it replicated to {r['store']['runs']:,} runs and "
          f"{r['store']['rows'] / 1e6:.1f}M rows ({r['store']['mb']:.0f} MB), cold server-side renders:")
    for page, small in r["small"].items():
        print(f"  {page:<24} {small:5.2f} s -> {r['large'][page]:5.2f} s ({r['ratio'][page]:.1f}x); records cold "
              f"{r['cold'][page]:5.2f} s")
    print(f"  slowest at scale {r['worst_s']:.2f} s, records cold {r['worst_cold_s']:.2f} s (goal <= 1.5 s)")
    return r


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SUITES), help=f"comma-separated subset of {', '.join(SUITES)}")
    parser.add_argument("--quick", action="store_true", help="small sizes and the tiny model (smoke run)")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SUITES)
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(sorted(unknown))}; choose from {', '.join(SUITES)}")
    env = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine()}
    print(f"geodiag benchmarks (torch {env['torch']}, {env['threads']} threads)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    runners = {"metrics": lambda q: metrics.run(q), "store": run_store, "engine": run_engine, "gid": run_gid,
               "scale": run_scale, "intruders": run_intruders, "evaluation": run_evaluation, "spectra": run_spectra,
               "pages": run_pages}
    for suite in chosen:
        result = runners[suite](args.quick)
        out = RESULTS / f"{suite}.json"
        out.write_text(json.dumps({"env": env, "quick": args.quick, **result}, indent=2, default=str))
        print(f"  -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
