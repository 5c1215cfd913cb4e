"""Coverage: per label, the round's samples that lie furthest from what the task's data already covers go back to
the teacher, chosen farthest-first (greedy k-center) in the map's sentence-embedding space.

Why: the energy band picks by what the student finds unfamiliar, which with soft labels mostly tracks the
teacher's own uncertainty; prompts then draw at random among band members, several of which can say nearly the
same thing. Coverage picks by where the text lies instead: the seeds and the task's evaluation rows (their text
only, never their labels) are the centres already covered, and each pick is the sample furthest from every
centre and every earlier pick, so the examples fed back are spread over the regions nothing covers yet.

What stays the same as the energy band, so a comparison isolates which samples go back rather than how many:
each label sends as many samples as the band would (`band_lo`–`band_hi` of the label's energies), noise is the
noise strategy's business (the pool holds no noise), and with `feedback_needs_agreement` a classification
sample whose label the student does not predict is never picked. Embeddings come from the map's encoder and its
cache in the store, so the map drawn after the round reuses them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Sequence

import numpy as np

from gold.records import Sample
from gold.specs import GoldSettings, TaskSpec
from gold.strategies.base import FeedbackPick
from gold.strategies.feedback import energy_band
from gold.strategies.feedback.energy_band import may_feed_back

Embed = Callable[[Sequence[str]], np.ndarray]


def farthest_first(candidates: np.ndarray, centres: np.ndarray, k: int) -> list[int]:
    """Greedy k-center: indices of `k` rows of `candidates` (L2-normalised vectors), each the one whose cosine
    distance to the nearest of `centres` and the rows already picked is largest. Ties go to the lower index, so
    the pick is deterministic. With no centres the first pick is the candidate furthest from the others' mean."""
    n = len(candidates)
    k = max(0, min(k, n))
    if not k:
        return []
    if len(centres):
        nearest = 1.0 - (candidates @ centres.T).max(axis=1)
    else:
        mean = candidates.mean(axis=0)
        nearest = -(candidates @ mean)  # the least typical first: furthest from the mean direction
    nearest = nearest.astype(np.float64)
    picked: list[int] = []
    taken = np.zeros(n, dtype=bool)
    for _ in range(k):
        scores = np.where(taken, -np.inf, nearest)
        i = int(np.argmax(scores))
        picked.append(i)
        taken[i] = True
        nearest = np.minimum(nearest, 1.0 - candidates @ candidates[i])
    return picked


def _encoder_embed(texts: Sequence[str]) -> np.ndarray:
    from gold.maps import get_encoder

    return get_encoder().encode(list(texts))


class Coverage:
    name = "coverage"
    needs_probes = True
    steers_with_rows = False
    draws_from_band = False

    def pick(self, pool: list[Sample], task: TaskSpec, settings: GoldSettings,
             student: Callable[[], Any] | None = None, embed: Embed | None = None) -> FeedbackPick:
        if not pool:
            return FeedbackPick()
        classify = task.kind == "classification"
        groups = [s.output if classify else "" for s in pool]
        band = energy_band.STRATEGY.pick(pool, task, settings)
        band_ids = set(band.ids)
        quota = Counter(g for s, g in zip(pool, groups) if s.id in band_ids)  # what the band sends per label
        eligible = [i for i, s in enumerate(pool) if may_feed_back(s, classify, settings)]
        embed = embed or _encoder_embed
        texts = [task.format_input(s.inputs) for s in pool]
        references = [task.format_input(ex.inputs) for ex in [*task.seeds, *task.eval_set]]
        vectors = np.asarray(embed(texts + references), dtype=np.float32)
        samples, centres = vectors[: len(texts)], vectors[len(texts):]
        ids: list[int] = []
        for group, k in quota.items():
            members = [i for i in eligible if groups[i] == group]
            chosen = farthest_first(samples[members], centres, k)
            ids += [pool[members[j]].id for j in chosen]
        return FeedbackPick(ids=sorted(ids), lo_energy=band.lo_energy, hi_energy=band.hi_energy)


STRATEGY = Coverage()
