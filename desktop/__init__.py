"""MelaScreen desktop package."""
