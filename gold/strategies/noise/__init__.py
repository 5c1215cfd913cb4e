"""Noise strategies: which training samples are noise, and what training does with them (`GoldSettings.noise`)."""
