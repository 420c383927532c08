"""Evaluation of all models side by side and the pipeline report."""
