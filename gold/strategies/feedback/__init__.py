"""Feedback strategies: which of a round's samples go back to the teacher (`GoldSettings.feedback`)."""
