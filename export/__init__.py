"""MelaScreen export package."""
