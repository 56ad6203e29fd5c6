"""Evaluation, torch-free, in one home: labelled sets (split.csv, labels.csv) and where the shared data sets
live, the metrics, the evaluation of a bundle through core (scoring, evaluation, report, figures, model card:
`python -m evalkit.evaluate`, also run as `python -m training.evaluate`), the intake check's figures, and the
cascade's fit. Each image is gated by core.screening.deciding, the function the app screens with. It sits on
`core` (which it may import); training and export import it; it imports neither of them, nor torch or Qt."""
