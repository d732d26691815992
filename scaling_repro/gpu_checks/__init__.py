"""The checks a GPU runs first (``scripts/gpu_check.py``): what only a GPU can show about the
training and evaluation paths of the paper recipes, each check in its own ``try``, its row
written to ``gpu.md`` / ``gpu.json`` as soon as it is measured. ``--smoke`` runs every check's
code path on a CPU at tiny sizes. The list of checks is :data:`scaling_repro.gpu_checks.checks.CHECKS`.
"""
