"""Whole-study reproductions: ``scaling-repro reproduce tiny`` (see :mod:`.study`)."""

from scaling_repro.config.study_plan import StudyPlan, load_plan, plan_path
from scaling_repro.reproduce.study import StudyOutcome, reproduce

__all__ = ["StudyPlan", "StudyOutcome", "load_plan", "plan_path", "reproduce"]
