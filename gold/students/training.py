"""How every student is optimised: one recipe shared by the classifier and the seq2seq student.

Steps are planned from epochs with a floor (small rounds must still converge), batches are consecutive slices of
a fresh seeded permutation per epoch, AdamW (fused where torch has it) skips decay on biases and norms, the
learning rate warms up linearly then decays to 0, gradients are clipped at 1, forward and backward run in bf16
mixed precision where the processor has bf16 arithmetic (`autocast`). Kept apart from the models so the
two students cannot drift into two recipes, and so the benchmarks can swap a piece (e.g. unfused AdamW).
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from typing import Callable, ContextManager, Iterator

import numpy as np
import torch

from gold.students.base import PRECISIONS, TrainingArgs


@functools.lru_cache(maxsize=None)
def _cpu_has_bf16() -> bool:
    """Native bf16 arithmetic on this CPU (AVX512-BF16 or AMX): where oneDNN's bf16 matmuls beat fp32 ones.
    Elsewhere torch emulates bf16 and mixed precision is slower than fp32."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(bool(getattr(cpu, name)()) for name in checks if hasattr(cpu, name))
    except (RuntimeError, AttributeError):
        return False


def compute_precision(device: torch.device, precision: str) -> str:
    """What "auto", "bf16" or "fp32" means on `device`: "bf16" or "fp32"."""
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown training precision {precision!r}; one of {', '.join(PRECISIONS)}.")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if _cpu_has_bf16() else "fp32"
    return "fp32"


def autocast(device: torch.device, precision: str) -> ContextManager:
    """The context a training step's forward pass runs in: torch's bf16 autocast for "bf16" (weights stay fp32,
    matmuls and their neighbours compute in bf16; backward follows the forward's types), nothing for "fp32".
    `precision` is a resolved one (`compute_precision`). The loss is computed outside, on fp32 logits."""
    if precision == "bf16" and device.type in ("cpu", "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Optimization:
    """The optimizer and its schedule for one fit of `steps` steps; `step()` after each backward pass."""

    def __init__(self, model: torch.nn.Module, args: TrainingArgs, steps: int):
        self.model = model
        self.optimizer = adamw(model, args)
        warmup = int(round(args.warmup_ratio * steps))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, linear_schedule(warmup, steps))

    def step(self) -> None:
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)


def plan_steps(n: int, args: TrainingArgs) -> int:
    """Optimizer steps for n examples: max(epochs·⌈n/batch⌉, min_steps), capped by max_steps when > 0.
    The floor exists because a student trained for a few steps on a small round stays near its initial
    state and its energies are flat (docs/architecture.md: std 0.03 vs 0.5–0.8 for a converged one)."""
    steps = max(args.epochs * math.ceil(n / args.batch_size), args.min_steps, 1)
    return min(steps, args.max_steps) if args.max_steps > 0 else steps


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled.float(), p=2, dim=-1)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on biases and LayerNorm weights (the usual BERT recipe: decaying them only hurts)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.dim() < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def adamw(model: torch.nn.Module, args: TrainingArgs) -> torch.optim.Optimizer:
    """AdamW, fused where torch has it: the step over 22.7M parameters took ~110 ms unfused vs ~20 ms fused
    on this 2-core CPU, more than forward and backward of a 16-sentence batch together."""
    groups = param_groups(model, args.weight_decay)
    try:
        return torch.optim.AdamW(groups, lr=args.learning_rate, fused=True)
    except (RuntimeError, TypeError, ValueError):  # a device or dtype without a fused kernel
        return torch.optim.AdamW(groups, lr=args.learning_rate)


def linear_schedule(warmup: int, total: int):
    """LR multiplier: linear warm-up over `warmup` steps, then linear decay to 0 at `total`."""

    def factor(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def steps_examples(n: int, batch_size: int, steps: int) -> int:
    """Examples seen in `steps` batches from `batches`: whole epochs, then the first batches of one more,
    which are all full (only an epoch's last batch is short)."""
    epochs, rest = divmod(steps, math.ceil(n / batch_size))
    return epochs * n + rest * batch_size


def batches(n: int, batch_size: int, steps: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """`steps` batches of indices: consecutive slices of a new permutation per epoch (last slice may be short)."""
    done = 0
    while done < steps:
        perm = rng.permutation(n)
        for s in range(0, n, batch_size):
            if done >= steps:
                return
            yield perm[s : s + batch_size]
            done += 1


class TorchThreads:
    """The fit's torch threads, governed like the teacher's (`gold.cpu`): before each step, as many as the cores
    other processes (and this worker's background map) leave free, at least one, at most the count torch had when
    the fit began; that count is put back when it ends.

    Why: the student's matmuls meet at OpenMP barriers many times per step, like llama.cpp's threads per token.
    Beside one busy process on 2 cores, a fit on two threads took 2.0× the time of one thread, where on an idle
    machine two are 1.4× faster (`bench/student_threads.py`; `bench/teacher_threads.py` for the teacher).
    """

    def __init__(self, device: torch.device, adapt: bool = True):
        self.most = torch.get_num_threads()
        self._governor = None
        if adapt and device.type == "cpu" and self.most > 1:  # torch's threads matter only where it computes on them
            from gold.cpu import ThreadGovernor

            self._governor = ThreadGovernor(self.most)
        self.used: set[int] = {self.most}  # every count a step ran with (reported, and read by tests)

    def adjust(self) -> int:
        """Set the count for the next step; returns it."""
        if self._governor is None:
            return self.most
        n = self._governor.threads()
        if n != torch.get_num_threads():
            torch.set_num_threads(n)
        self.used.add(n)
        return n

    def restore(self) -> None:
        if torch.get_num_threads() != self.most:
            torch.set_num_threads(self.most)


class BestWeights:
    """Early stopping without a second training run: after each epoch the student is scored on the task's
    labeled rows, the best weights so far are kept in memory (a copy of the state dict: ~90 MB for MiniLM),
    and `restore` puts them back when the fit ends.

    Why: a student trained to convergence on generated data memorises its label noise (docs/architecture.md: converged
    final students lost 3–6 points, and plain generation got worse as its budget grew). The labeled rows a
    user gives for evaluation are the one clean signal a run has, so the final student is the epoch that does
    best on them. Ties go to the later epoch (more data seen, same score). `score` must return higher = better.
    """

    def __init__(self, model: torch.nn.Module, score: Callable[[], float]):
        self.model = model
        self.score = score
        self.best_score = -math.inf
        self.best_step: int | None = None
        self.history: list[tuple[int, float]] = []
        self._state: dict[str, torch.Tensor] | None = None
        self.seconds = 0.0  # spent scoring and keeping weights: a fit's cost that is not training

    def offer(self, step: int) -> float:
        """Score the model as it is now (in eval mode, then back to train mode) and keep it if it is the best."""
        start = time.perf_counter()
        try:
            return self._offer(step)
        finally:
            self.seconds += time.perf_counter() - start

    def _offer(self, step: int) -> float:
        was_training = self.model.training
        self.model.eval()
        try:
            value = float(self.score())
        finally:
            self.model.train(was_training)
        self.history.append((step, value))
        if value >= self.best_score:
            self.best_score, self.best_step = value, step
            self._state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return value

    def restore(self) -> None:
        if self._state is not None:
            self.model.load_state_dict(self._state)
            self._state = None


def epoch_ends(n: int, batch_size: int, steps: int) -> set[int]:
    """The steps after which an epoch is complete (and the last step): where early stopping scores the model."""
    per_epoch = max(1, math.ceil(n / batch_size))
    return set(range(per_epoch, steps + 1, per_epoch)) | {steps}
