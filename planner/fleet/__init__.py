"""Stage: plan a fleet of services jointly under the account's shared limits (``hetplan solve --fleet``).

:mod:`.spec` reads the fleet file; :mod:`.coupling` builds each service's MILP and its rows of the shared limits;
:mod:`.decompose` prices the shared rows (Lagrangian relaxation), keeps a valid lower bound and recovers a
feasible fleet plan; :mod:`.workflow` runs the subproblems on Dask and writes the plans and the fleet summary.
"""
