"""Scripted tutor journeys (deterministic payload generators) replayed by the integration tests."""
