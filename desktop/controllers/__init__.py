"""Small controllers the main window wires: each does one job over core's API (loading the models, writing a
run's exports, loading a stored run) and reports back by Qt signals; none draws a widget of its own."""
