"""Energy band (the paper's feedback): per label, the round's samples between the `band_lo` and `band_hi`
percentiles of the student's energy go back to the teacher as in-context examples.

Why a band and not the top: the highest-energy samples are as often mislabeled or off-task as they are rare, so
the band stops short of them (those above `band_hi` are the noise strategy's business). With
`feedback_needs_agreement`, a classification sample whose label the student does not predict is left out: of the
detectors of mislabeled samples measured, that one was the best (docs/architecture.md)."""

from __future__ import annotations

from typing import Any, Callable

from gold.energy import select_band
from gold.records import Sample
from gold.specs import GoldSettings, TaskSpec
from gold.strategies.base import FeedbackPick


def may_feed_back(sample: Sample, classify: bool, settings: GoldSettings) -> bool:
    """The agreement rule (`feedback_needs_agreement`): a classification sample may go back to the teacher only
    if the student predicts its given label."""
    return not (settings.feedback_needs_agreement and classify and sample.prediction != sample.output)


class EnergyBand:
    name = "energy_band"
    needs_probes = True
    steers_with_rows = False
    draws_from_band = True

    def pick(self, pool: list[Sample], task: TaskSpec, settings: GoldSettings,
             student: Callable[[], Any] | None = None, embed: Any = None) -> FeedbackPick:
        classify = task.kind == "classification"
        band = select_band([s.energy for s in pool], settings.band_lo, settings.band_hi,
                           groups=[s.output for s in pool] if classify else None)
        ids = [pool[i].id for i in band.feedback if may_feed_back(pool[i], classify, settings)]
        return FeedbackPick(ids=ids, lo_energy=band.lo_value, hi_energy=band.hi_value)


STRATEGY = EnergyBand()
