"""Generalist members: a frozen ImageNet backbone's pooled features (extracted once, cached) plus a
small head fitted on every training source; judged by held-out-source validation (protocol.py)."""
