"""Shared by the evaluate tests: a plan edited on a deep copy, then re-checked independently."""

from __future__ import annotations

import copy

from hetplan.planner.optimize.evaluate import Evaluation, evaluate


def tampered(plan: dict, edit) -> Evaluation:
    """``evaluate`` of a copy of ``plan`` after ``edit(copy)``: the original is never touched."""
    p = copy.deepcopy(plan)
    edit(p)
    return evaluate(p)
