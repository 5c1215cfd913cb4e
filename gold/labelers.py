"""Labelers: who reads each generated text back as a few-shot classifier, for the student's soft labels.

Why a labeler apart from the teacher that generates: the two jobs want different models. Generation wants a
model that follows the prompt and is fast (it writes every sample); reading a label back is one forward pass
per text and wants the model that classifies the task best, which is a matter of measuring: few-shot on SST-2
Gemma-3-270m reads 89% against the embedded SmolLM2's 66%, on TREC 57.5% against 54.3%. So a run names candidate
labelers (`LabelerSpec.models`) and how one is picked (`LabelerSpec.pick`): the first, the ensemble of all
(their calibrated probabilities averaged), or "choose": each candidate and the ensemble classify the task's
evaluation rows few-shot before round 1, and the most accurate labels the run. That choice costs no
generation: every candidate reads the same rows once, and the ensemble is computed from those reads.

A candidate is a reference string (`LabelerRef`): "teacher" (the generating teacher, on its own engine), a local
model ("embedded:gemma3-270m", a folder, a .gguf file), an OpenAI-compatible server, "openai:MODEL@BASE_URL",
whose label probabilities come from its `logprobs` (`OpenAITeacher.label_loglik`), or "seeds", the run's student
model fine-tuned on the seeds alone (`gold.seed_labeler`: beside a weak teacher it can be the better reader).
"none" reads nothing: the student trains on the labels the teacher was asked to write.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from gold.labeler_refs import ENSEMBLE, NONE, SEEDS, TEACHER, LabelerRef
from gold.records import Round
from gold.specs import Example, GoldSettings, TaskSpec

class LabelerError(RuntimeError):
    """A labeler cannot be used (its model is missing, its server unreachable); the message says why."""


def refs(settings: GoldSettings) -> list[LabelerRef]:
    """The run's candidate labelers, the generating teacher when none is named."""
    return [LabelerRef.parse(m) for m in settings.labeler.models] or [LabelerRef(TEACHER)]


class Labeler:
    """A named reader of labels: one scorer, or several whose calibrated probabilities are averaged.

    `read` returns each member's contextually calibrated probabilities (the content-free prior of each member is
    computed once per labeler and reused across chunks); `combine` turns those into the soft labels, applying
    batch calibration toward a known label mix (`target`) member by member and again on the mean, so that a
    member with a strong bias does not drag the ensemble toward its favourite label."""

    def __init__(self, name: str, scorers: Sequence[Any]):
        self.name = name
        self.scorers = list(scorers)
        self._priors: list[np.ndarray | None] = [None] * len(self.scorers)

    def read(self, task: TaskSpec, inputs: Sequence[dict[str, str]], seed: int) -> list[np.ndarray]:
        from gold.teachers import fewshot

        reads = []
        for i, scorer in enumerate(self.scorers):
            if getattr(scorer, "direct", False):  # a classifier of its own (the seeds labeler): its probabilities
                reads.append(scorer.read_probs(task, inputs))
                continue
            p = fewshot.label_probs(scorer, task, inputs, seed=seed, prior=self._priors[i])
            self._priors[i] = p.prior
            reads.append(p.calibrated)
        return reads

    @staticmethod
    def combine(reads: Sequence[np.ndarray], target: np.ndarray | None) -> np.ndarray:
        from gold.teachers.fewshot import match_prior

        if target is not None:
            reads = [match_prior(r, target) for r in reads]
        mean = np.mean(np.stack(reads), axis=0)
        if target is not None and len(reads) > 1:
            mean = match_prior(mean, target)
        return mean

    def stats(self) -> dict[str, int]:
        """Summed read statistics of the members that keep them (remote labelers: floors, failures)."""
        total: dict[str, int] = {}
        for s in self.scorers:
            st = getattr(s, "label_stats", None)
            if st is not None:
                for k, v in st.to_dict().items():
                    if isinstance(v, int):
                        total[k] = total.get(k, 0) + v
        return total


def load_scorer(ref: LabelerRef, settings: GoldSettings, teacher_scorer: Callable[[], Any]) -> Any:
    """The loaded model behind a reference (cached per process by the teachers' own caches)."""
    if ref.kind == TEACHER:
        return teacher_scorer()
    if ref.kind == SEEDS:
        from gold.seed_labeler import SeedLabeler

        return SeedLabeler(settings)
    if ref.kind == "local":
        from gold.teachers import local_teacher

        # the run's local engine when it names one, else "auto" (llama.cpp for a GGUF when installed), so a
        # labeler that is the teacher's own model is the same loaded model and reads the same labels
        t = settings.teacher
        return local_teacher(ref.model, t.engine if t.backend == "local" and t.engine == "transformers" else "auto",
                             gguf_weights=t.gguf_weights, sequences=t.parallel_sequences)
    if ref.kind == "openai":
        return remote_labeler(ref, settings)
    raise LabelerError(f"'{ref}' reads no labels.")


_REMOTE: dict[tuple, Any] = {}


def remote_labeler(ref: LabelerRef, settings: GoldSettings) -> Any:
    """An OpenAI-compatible server as a labeler; the key comes from OPENAI_API_KEY (a server of one's own
    usually needs none)."""
    from gold.teachers.remote import OpenAITeacher

    t, votes = settings.teacher, settings.labeler.votes
    key = (ref.model, ref.base_url, t.max_concurrency, t.timeout_s, votes)
    if key not in _REMOTE:
        _REMOTE[key] = OpenAITeacher(model=ref.model, base_url=ref.base_url or None, max_concurrency=t.max_concurrency,
                                     timeout_s=t.timeout_s, label_votes=votes)
    return _REMOTE[key]


def build(name: str, settings: GoldSettings, teacher_scorer: Callable[[], Any]) -> Labeler | None:
    """The labeler a name stands for: a candidate's reference, or "ensemble" (every candidate); None for
    "none" (no soft labels)."""
    candidates = refs(settings)
    if name == ENSEMBLE:
        chosen = [r for r in candidates if r.kind != NONE]
        return Labeler(ensemble_name(chosen), [load_scorer(r, settings, teacher_scorer) for r in chosen])
    ref = LabelerRef.parse(name)
    if ref.kind == NONE:
        return None
    return Labeler(str(ref), [load_scorer(ref, settings, teacher_scorer)])


def ensemble_name(members: Sequence[LabelerRef]) -> str:
    return "ensemble of " + " + ".join(str(m) for m in members)


def recorded(rounds: Sequence[Round]) -> tuple[str | None, dict[str, Any] | None]:
    """(labeler name, "choose" table) as the rounds' metrics recorded them: the last round that named a labeler,
    and the round that chose, if any. The Runs page and the exports read them from here."""
    name = next((r.metrics.labeler for r in reversed(rounds) if r.metrics.labeler), None)
    choice = next((r.metrics.labeler_choice for r in rounds if r.metrics.labeler_choice), None)
    return name, choice


def planned_name(settings: GoldSettings) -> str | None:
    """The labeler a run uses without choosing: the first candidate, or "ensemble"; None when it chooses on
    the evaluation rows (the choice is made in round 1 and stored there)."""
    pick = settings.labeler.pick
    if pick == "choose" and len(refs(settings)) > 1:
        return None
    if pick == "ensemble" and len(refs(settings)) > 1:
        return ENSEMBLE
    return str(refs(settings)[0])


# -- choosing on the evaluation rows -----------------------------------------------------------------------------

@dataclass
class LabelerScore:
    """One row of the "choose on my rows" table: a candidate's accuracy on the evaluation rows (read few-shot, or
    as a classifier by "seeds")."""

    labeler: str
    metric: float | None
    seconds: float
    chosen: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"labeler": self.labeler, "metric": None if self.metric is None else round(self.metric, 4),
                "seconds": round(self.seconds, 1), "chosen": self.chosen, "error": self.error}


@dataclass
class LabelerChoice:
    """What "choose" decided: the name to build (`build`) and the table shown on the Runs page."""

    chosen: str
    table: list[LabelerScore] = field(default_factory=list)
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "rows": self.rows, "table": [s.to_dict() for s in self.table]}


def choose(task: TaskSpec, rows: Sequence[Example], settings: GoldSettings,
           teacher_scorer: Callable[[], Any], progress: Callable[[str], None] | None = None) -> LabelerChoice:
    """Each candidate classifies `rows` few-shot (calibrated as the run's soft labels are: batch calibration
    assumes a balanced batch here, as the teacher's own few-shot read-out does), the ensemble is scored from
    the same reads, and the most accurate wins; ties go to the earlier candidate, and the ensemble wins only
    when strictly better. A candidate that fails (model missing, server down) gets its error in the table."""
    from gold.evaluation import task_metric

    labels = list(task.labels)
    uniform = np.full(len(labels), 1 / len(labels))
    target = uniform if settings.student.soft_label_calibration == "batch" else None
    inputs = [ex.inputs for ex in rows]
    table: list[LabelerScore] = []
    reads: list[np.ndarray] = []
    used: list[LabelerRef] = []
    for ref in refs(settings):
        if ref.kind == NONE:
            continue
        if progress:
            progress(f"the labeler {ref} reads {len(rows)} evaluation rows")
        started = time.perf_counter()
        try:
            labeler = Labeler(str(ref), [load_scorer(ref, settings, teacher_scorer)])
            read = labeler.read(task, inputs, settings.seed)[0]
        except Exception as e:  # noqa: BLE001 — one unusable candidate must not end the choice
            table.append(LabelerScore(str(ref), None, time.perf_counter() - started, error=f"{type(e).__name__}: {e}"))
            continue
        probs = Labeler.combine([read], target)
        table.append(LabelerScore(str(ref), task_metric(task, [labels[i] for i in probs.argmax(axis=1)], rows),
                                  time.perf_counter() - started))
        reads.append(read)
        used.append(ref)
    if len(reads) > 1:
        probs = Labeler.combine(reads, target)
        table.append(LabelerScore(ENSEMBLE, task_metric(task, [labels[i] for i in probs.argmax(axis=1)], rows), 0.0))
    scored = [s for s in table if s.metric is not None]
    if not scored:
        raise LabelerError("No candidate labeler could read the evaluation rows: "
                           + "; ".join(f"{s.labeler}: {s.error}" for s in table))
    best = scored[0]
    for s in scored[1:]:
        if s.metric > best.metric:  # strictly better: ties keep the earlier one, the ensemble comes last
            best = s
    best.chosen = True
    return LabelerChoice(best.labeler, table, len(rows))
