"""Evaluation of a model bundle through core, split by job: predict (scoring and the raw-outputs
cache), metrics, figures, report, model_card, cli. `python -m training.evaluate` runs cli.main."""
