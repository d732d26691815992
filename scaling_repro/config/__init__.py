"""The recipe language: schemas of recipes and study plans, YAML loading, overrides, sweeps."""
