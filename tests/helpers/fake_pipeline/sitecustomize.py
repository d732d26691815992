"""Fake runs in every Python process started with this directory on ``PYTHONPATH``.

Python imports ``sitecustomize`` at start-up; this one replaces the pipeline's ``run_spec``
with the launch tests' fake (``launch_fakes.install``), so ``python -m scaling_repro run``
and ``scaling-repro sweep`` children of a launch test run fake runs through the real
command line. ``launch_fakes.subprocess_env`` puts this directory and the repository on the path.
"""

from tests.helpers import launch_fakes

launch_fakes.install()
