"""MelaScreen training package."""
