"""The planner, in four stages callable on their own:

1. data    — ``options``: profile + catalog + SLO → usable (model, platform) options with capacity and cost;
             ``traces`` / ``predict``: trace → per-window load;
2. model   — ``model``: the solver-neutral MILP (variables, constraints, objective) built from pandas data;
3. solvers — ``solvers``: thin backends (HiGHS, CBC via PuLP, OR-Tools) behind a registry, lazily imported;
4. results — ``plan``: the deployment plan, its JSON form, and ``evaluate``: an independent re-check.

The planner never imports mxnet: it reads profile files written by the profiler.
"""
