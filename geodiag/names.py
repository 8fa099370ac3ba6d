"""Every metric name geodiag records, and the constants more than one module needs.

A torch-free leaf (it imports nothing): collectors and analyses write these names, the store keeps them in
its one long-format metrics table, and figures and pages read them back, so each is spelled once, here.
"""

from __future__ import annotations

# --- the training objective (ManifoldLoRA Eq. 8; AdaLoRA's orthogonality regulariser) ---------------------
LOSS_LM = "loss/lm"
LOSS_SPARSITY = "loss/sparsity"
LOSS_ALIGNMENT = "loss/alignment"
LOSS_ORTHOGONALITY = "loss/orthogonality"
LOSS_TOTAL = "loss/total"
LR = "lr"
GRAD_NORM = "grad_norm"
EVAL_ACCURACY = "eval/accuracy"
EVAL_SCORE = "eval/score"
EVAL_LOSS = "eval/loss"
# the dev split a sweep selects learning rates on (the eval/ names are the test split's)
DEV_ACCURACY = "dev/accuracy"
DEV_SCORE = "dev/score"
DEV_LOSS = "dev/loss"
SPLIT_METRICS = {"test": (EVAL_ACCURACY, EVAL_SCORE, EVAL_LOSS), "dev": (DEV_ACCURACY, DEV_SCORE, DEV_LOSS)}
# each evaluated item's exact match (0/1) and partial score: module = its split, idx = its stable position there
ITEM_EXACT = "item/exact"
ITEM_SCORE = "item/score"
# mean token loss on general text that is not the task's, at step 0 (the base model) and at the end: forgetting
# is the difference (Biderman et al. 2024, "LoRA Learns Less and Forgets Less")
FORGET_LOSS = "forget/loss"

# --- ManifoldLoRA gates and probes (ManifoldLoRA §3.1-3.3) ------------------------------------------------
GATE_VALUE = "gate/value"
GATE_EFFECTIVE_RANK = "gate/effective_rank"
GATE_DEAD = "gate/dead"
GATE_TEMPERATURE = "gate/temperature"
PROBE_D_EFF = "probe/d_eff"
PROBE_ORTHONORMALITY = "probe/orthonormality"
PROBE_ALIGNMENT = "probe/alignment"
PROBE_COVERAGE = "probe/activation_coverage"

# --- hidden-state geometry (ManifoldLoRA Eq. 5) -----------------------------------------------------------
PARTICIPATION_RATIO = "geometry/participation_ratio"
PARTICIPATION_RATIO_N = "geometry/participation_ratio_n"

# --- the Delta W spectrum (ManifoldLoRA §5.4, Fig. 5) -----------------------------------------------------
SINGULAR_VALUE = "spectrum/singular_value"
STABLE_RANK = "spectrum/stable_rank"
NUCLEAR = "spectrum/nuclear"
FROBENIUS = "spectrum/frobenius"
SPECTRUM_ERANK = "spectrum/erank"
POWERLAW_ALPHA = "spectrum/alpha"
POWERLAW_R2 = "spectrum/alpha_r2"
POWERLAW_N = "spectrum/alpha_n"
ADALORA_RANK = "adalora/rank"
# DoRA (Liu et al. 2024, §2.2): the mean change of the magnitude vector and of the rows' direction against W0
DORA_MAGNITUDE = "dora/magnitude_change"
DORA_DIRECTION = "dora/direction_change"
# intruder dimensions (Shuttleworth et al. 2024): per module, the count among W's top-k singular vectors, and
# each top vector's largest |cos| with the pre-trained W's singular vectors (idx = k)
INTRUDERS = "intruders/count"
INTRUDER_COS = "intruders/max_cos"

# --- gradient intrinsic dimensionality (RaLoRA §3.2, App. D-E) --------------------------------------------
GID = "gid/erank"
GID_THRESHOLD = "gid/threshold"  # idx k: the number of singular values above 1e-k
IMPORTANCE = "importance"
FISHER = "fisher/mean"
GID_FISHER = {"pearson_log": "gid/fisher_pearson_log", "pearson_inv": "gid/fisher_pearson_inv",
              "spearman": "gid/fisher_spearman", "n": "gid/fisher_n"}  # RaLoRA Table 8, per module type

# --- intrinsic dimension of hidden states (GeLoRA) -----------------------------------------------------------
TWONN = "id/twonn"
TWONN_ERROR = "id/twonn_error"
TWONN_N = "id/twonn_n"
TWONN_DUPLICATES = "id/twonn_duplicates"

# --- parameter budgets and progress -----------------------------------------------------------------------
PARAMS_TRAINABLE = "params/trainable"
PARAMS_LORA_REFERENCE = "params/lora_reference"
ANALYSIS_PROGRESS = "analysis/progress"

# --- the pretrained weights' spectra (`geodiag analyze spectra`; Martin & Mahoney 2021, WeightWatcher) -----
ESD_EIGENVALUE = "esd/eigenvalue"  # idx k: the k-th largest eigenvalue of W^T W
ESD_ALPHA = "esd/alpha"  # the power-law exponent of the ESD's tail
ESD_XMIN = "esd/xmin"  # where the fitted tail starts
ESD_KS = "esd/ks_distance"  # its Kolmogorov-Smirnov distance
ESD_ALPHA_SIGMA = "esd/alpha_sigma"  # the MLE's standard error
ESD_TAIL_N = "esd/tail_n"  # eigenvalues in the tail
ESD_STABLE_RANK = "esd/stable_rank"  # sum(lambda) / max(lambda) = ||W||_F^2 / ||W||_2^2
ESD_SPIKES = "esd/spikes"  # eigenvalues above the Marchenko-Pastur bulk (plus its Tracy-Widom margin)
ESD_MP_SIGMA = "esd/mp_sigma"  # the fitted MP scale (on the ESD rescaled to mean 1)
ESD_BULK_MAX = "esd/bulk_max"  # the bulk's upper edge lambda_+
ESD_D_OUT = "esd/d_out"  # the matrix's shape
ESD_D_IN = "esd/d_in"

# --- principal angles between Delta W, the gradient and the probe span (beyond the papers) ----------------
ANGLE_DW_GRAD = "subspace/angle_dw_grad"
ANGLE_DW_PROBE = "subspace/angle_dw_probe"
ANGLE_GRAD_PROBE = "subspace/angle_grad_probe"


def random_reference(angle: str) -> str:
    """The name of the random-subspace reference recorded beside a principal-angle metric."""
    return angle.replace("/angle_", "/random_")


def allocation(method: str, part: str = "") -> str:
    """alloc/<method> (rank per block) or alloc/<method>/<part> (blocks, equivalent_rank, params)."""
    return f"alloc/{method}/{part}" if part else f"alloc/{method}"


def allocation_parts(name: str) -> tuple[str, str] | None:
    """(method, part) of an allocation metric name ("" for the rank itself); None for any other name."""
    head, _, rest = name.partition("/")
    if head != "alloc" or not rest:
        return None
    method, _, part = rest.partition("/")
    return method, part


# --- constants shared by the engine, the figures and the pages ---------------------------------------------
DEAD_GATE = 0.05  # ManifoldLoRA §3: a gate below this is dead
GID_THRESHOLDS = (1e-1, 1e-3, 1e-5)  # RaLoRA App. D: threshold-rank estimators beside the entropy GID
LAMBDA_S = 0.01  # ManifoldLoRA §4.1: sparsity loss weight
LAMBDA_A = 0.10  # ManifoldLoRA §4.1: alignment loss weight
R_REF = 8  # the LoRA rank every allocation's budget is compared with (RaLoRA §4: r = 8)
DEFAULT_TASK = "basic_arithmetic"
MIN_ID_POINTS = 20  # TwoNN per layer on fewer points says nothing (and needs 3 distinct ones at the very least)

# a transformers Trainer's log keys (its callback logs and trainer_state.json's log_history) as metric names;
# any other numeric key is recorded as trainer/<key>
TRAINER_LOGS = {"loss": LOSS_LM, "learning_rate": LR, "eval_loss": EVAL_LOSS, "grad_norm": GRAD_NORM}


def trainer_log(key: str) -> str:
    return TRAINER_LOGS.get(key, f"trainer/{key}")
