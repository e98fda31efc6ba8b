"""Classifiers of CS231n assignment 1 (filled in by the classifiers issue)."""
