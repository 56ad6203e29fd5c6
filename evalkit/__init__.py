"""Torch-free pieces that training, export and evaluation share: labelled sets (split.csv,
labels.csv), where the shared data sets live, and the metrics. It sits between `core` (which it may
import) and `training` / `export` (which import it); it imports neither of them, nor torch."""
