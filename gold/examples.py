"""Example tasks bundled with GOLD Studio, loadable in one click (or `python -m gold task example KEY`).

The data ships inside the package (`gold/example_data/`, sources and licences in its SOURCES.md), so the
examples work offline and do not depend on any folder outside the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gold.datafiles import ColumnMapping, load_examples
from gold.specs import TaskSpec

DATA_DIR = Path(__file__).resolve().parent / "example_data"


@dataclass(frozen=True)
class ExampleTask:
    key: str
    title: str
    kind: str
    instruction: str
    labels: tuple[str, ...]
    input_fields: tuple[str, ...]
    output_column: str
    output_name: str
    source: str

    def folder(self) -> Path:
        return DATA_DIR / self.key

    def spec(self, name: str | None = None) -> TaskSpec:
        """A ready TaskSpec: the bundled seeds, and the bundled dev rows as the evaluation set."""
        mapping = ColumnMapping(inputs={f: f for f in self.input_fields}, output=self.output_column)
        fields = list(self.input_fields)
        return TaskSpec(
            name=name or self.title,
            kind=self.kind,
            instruction=self.instruction,
            labels=list(self.labels),
            input_fields=fields,
            output_name=self.output_name,
            seeds=load_examples(self.folder() / "seeds.jsonl", fields, mapping),
            eval_set=load_examples(self.folder() / "dev.jsonl", fields, mapping),
        )


EXAMPLES: dict[str, ExampleTask] = {
    e.key: e
    for e in (
        ExampleTask(
            key="sst2",
            title="Movie review sentiment (SST-2)",
            kind="classification",
            instruction="Classify the sentiment of a movie review sentence as positive or negative.",
            labels=("negative", "positive"),
            input_fields=("text",),
            output_column="label",
            output_name="label",
            source="Stanford Sentiment Treebank (Socher et al., 2013), GLUE SST-2",
        ),
        ExampleTask(
            key="trec",
            title="Question type (TREC)",
            kind="classification",
            instruction=(
                "Classify what kind of answer a question asks for: an abbreviation, a description, an entity, "
                "a human, a location or a number."
            ),
            labels=("abbreviation", "description", "entity", "human", "location", "numeric"),
            input_fields=("text",),
            output_column="label",
            output_name="label",
            source="TREC question classification (Li and Roth, 2002)",
        ),
        ExampleTask(
            key="agnews",
            title="News topic (AG News)",
            kind="classification",
            instruction="Classify the topic of a news article: World, Sports, Business or Sci/Tech.",
            labels=("World", "Sports", "Business", "Sci/Tech"),
            input_fields=("text",),
            output_column="label",
            output_name="label",
            source="AG News (Zhang et al., 2015), research and non-commercial use only",
        ),
        ExampleTask(
            key="sms_spam",
            title="SMS spam",
            kind="classification",
            instruction="Decide whether an SMS text message is spam or a normal message (ham).",
            labels=("ham", "spam"),
            input_fields=("text",),
            output_column="label",
            output_name="label",
            source="SMS Spam Collection v.1 (Almeida et al., 2011)",
        ),
        ExampleTask(
            key="svamp",
            title="Math word problems (SVAMP)",
            kind="seq2seq",
            instruction="Solve the math word problem and give the final answer as a number.",
            labels=(),
            input_fields=("question",),
            output_column="answer",
            output_name="answer",
            source="SVAMP (Patel et al., 2021)",
        ),
    )
}


def example_spec(key: str, name: str | None = None) -> TaskSpec:
    if key not in EXAMPLES:
        raise KeyError(f"There is no example task '{key}'; choose one of: {', '.join(EXAMPLES)}.")
    return EXAMPLES[key].spec(name)
