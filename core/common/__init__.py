"""Pieces every room uses: typed errors, private atomic files, strict JSON fields, AUC, PNG text, offline switches."""
