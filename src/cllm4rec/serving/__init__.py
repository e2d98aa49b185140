"""Scoring users with a trained CLLM4Rec model: evaluation and recommendation share this code."""
