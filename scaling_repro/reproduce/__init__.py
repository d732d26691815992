"""Whole-study reproductions: ``scaling-repro reproduce tiny`` (see :mod:`.study`)."""

from scaling_repro.config.study_plan import StudyPlan, load_plan, plan_path
from scaling_repro.reproduce.study import StudyResult, reproduce

__all__ = ["StudyPlan", "StudyResult", "load_plan", "plan_path", "reproduce"]
