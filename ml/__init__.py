"""Churn model (PRD "ML Model Details"): point-in-time features, labels, and later training and scoring.

Product code: like every product module it never reads the simulation's ground truth;
truth labels are handed in by the caller (see ml/labels.py).
"""
