"""The main views: screening a folder, one case with its heat map, the review queue."""
