"""Figures, results tables, the evaluation files and the HTML run report."""
