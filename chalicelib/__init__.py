"""Cloud Pay domain code. Nothing below this package imports Chalice."""
