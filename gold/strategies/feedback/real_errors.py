"""Real errors (the S3 recipe, "Synthesis Step by Step", Wang et al. 2023, adapted to GOLD's energy): the
round's student reads the task's steering rows (half of its evaluation rows, gold/steering.py); per true label,
the rows it gets wrong, highest energy first, go to the next round's prompts of that label as in-context
examples, so the teacher writes "more like these" where the student is weakest. A label the student gets right
everywhere still sends its `feedback_count` highest-energy rows: the ones furthest from what it has learned.

Why real rows rather than the round's own samples: with soft labels the student already learns the teacher's
uncertainty on the samples it wrote, so picking among those samples by energy adds little (docs/architecture.md);
the student's errors on real text are a signal the teacher's own writing does not contain. The run then
measures on the other half of the evaluation rows only, and it writes no probes (its whole teacher budget buys
samples), since probes serve only strategies that pick among them.

A task with fewer than 4 evaluation rows has nothing to steer with: the round falls back to the energy band
and says so."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from gold.evaluation import is_correct
from gold.records import Sample
from gold.specs import GoldSettings, TaskSpec
from gold.steering import steering_rows
from gold.strategies.base import FeedbackPick
from gold.strategies.feedback import energy_band


class RealErrors:
    name = "real_errors"
    needs_probes = False
    steers_with_rows = True
    draws_from_band = False

    def pick(self, pool: list[Sample], task: TaskSpec, settings: GoldSettings,
             student: Callable[[], Any], embed: Any = None) -> FeedbackPick:
        index, rows = steering_rows(task)
        if not rows:
            fallback = energy_band.STRATEGY.pick(pool, task, settings)
            fallback.note = ("The task has too few evaluation rows to steer with (4 or more needed): this round's "
                             "feedback is the energy band of its samples.")
            return fallback
        model = student()
        texts = [task.format_input(ex.inputs) for ex in rows]
        truths = [ex.output for ex in rows]
        if task.kind == "classification":
            scored = model.score(texts, temperature=settings.energy_temperature)
            predicted = [p.output for p in model.predictions(scored.probs)]
            energies = np.asarray(scored.energy, dtype=float)
        else:  # the student's own answers, and its teacher-forced energy on the true ones
            predicted = [p.output for p in model.predict(texts)]
            energies = np.asarray(model.energy(texts, truths, temperature=settings.energy_temperature), dtype=float)
        wrong = [not is_correct(task, p, t) for p, t in zip(predicted, truths)]
        energies = np.where(np.isfinite(energies), energies, -np.inf)
        groups: dict[str, list[int]] = {}
        for j, t in enumerate(truths):
            groups.setdefault(t if task.kind == "classification" else "", []).append(j)
        picked: list[int] = []
        for members in groups.values():
            members.sort(key=lambda j: energies[j], reverse=True)
            errors = [j for j in members if wrong[j]]
            right = [j for j in members if not wrong[j]]
            picked += [index[j] for j in errors + right[: max(0, settings.feedback_count - len(errors))]]
        return FeedbackPick(rows=sorted(picked), steering_accuracy=round(1 - sum(wrong) / len(wrong), 4))


STRATEGY = RealErrors()
