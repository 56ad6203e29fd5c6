"""A run: files through the models to stored outcomes, auto-clearing and the camera check, deciding
stored results again (re-gating) and the clinic's audit."""
