"""Stage 5, what-if: grids of scenarios solved in parallel (Dask) and their Pareto frontier."""
