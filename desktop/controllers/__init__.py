"""Small controllers the main window wires, each with one job over core's API, reporting back by Qt signals:
loading the models (models.py), opening the results file (results_file.py), the Screening tab's runs
(screening.py: screening, stored runs, trial confidences; a stored run read by runs.py), a run's exports
(exports.py), moving between cases (cases.py), and the Settings and About dialogs (settings_about.py).
Whatever reads files or many rows runs on a worker (desktop/workers.py)."""
