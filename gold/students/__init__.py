"""Students: the small models GOLD distills into. `base` holds the protocol and the training arguments;
`classifier` (encoder + head) and `seq2seq` (causal LM) implement it."""

from gold.students.base import Prediction, Student, TrainExample, TrainingArgs, TrainReport

__all__ = ["Prediction", "Student", "TrainExample", "TrainingArgs", "TrainReport"]
