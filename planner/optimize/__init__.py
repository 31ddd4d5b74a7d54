"""Stage 3, optimize: options from the profile, queueing and sizing rules, the MILP, its solvers, the plan and
its independent evaluation. Imports only the catalog and forecast stages."""
