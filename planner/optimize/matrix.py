"""The MILP as matrices: named variable blocks and row blocks assembled into one sparse matrix.

``model.py`` says what the rows mean; this module only stores them. Building in bulk from numpy arrays
keeps a 1,440-window model to a fraction of a second (``../shared/notes/milp-scaling.md``: PuLP took
16 s for what a matrix build does in 0.2 s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class VarBlock:
    name: str
    offset: int
    shape: tuple[int, int]

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    def index(self, t: np.ndarray | int, j: np.ndarray | int) -> np.ndarray:
        return self.offset + np.asarray(t) * self.shape[1] + np.asarray(j)


@dataclass
class MilpModel:
    """min cᵀz s.t. row_lb ≤ A z ≤ row_ub, lb ≤ z ≤ ub, z_j integer where ``integer[j]``.

    Variables and rows carry names (``vm-count[3,vm:squeezenet@c5.large]``) through ``blocks`` and
    ``row_blocks`` so LP dumps and infeasibility reports read well; ``objective_offset`` is a constant.
    """

    windows: object  # model.Windows
    options: object  # options.Options
    blocks: dict[str, VarBlock]
    cost: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    integer: np.ndarray
    matrix: sp.csr_matrix
    row_lb: np.ndarray
    row_ub: np.ndarray
    row_blocks: list[tuple[str, int, int, list]]  # (name, first row, row count, labels per row)
    objective_offset: float = 0.0

    @property
    def num_vars(self) -> int:
        return len(self.cost)

    @property
    def num_rows(self) -> int:
        return self.matrix.shape[0]

    def var_names(self) -> list[str]:
        names = []
        for block in self.blocks.values():
            labels = self._column_labels(block.name)
            names += [f"{block.name}[{t},{labels[j]}]" for t in range(block.shape[0]) for j in range(block.shape[1])]
        return names

    def row_names(self) -> list[str]:
        names = []
        for name, _, count, labels in self.row_blocks:
            names += [f"{name}[{labels[r]}]" for r in range(count)]
        return names

    def _column_labels(self, block: str) -> list[str]:
        return list(self.options.lam.option) if block == "lambda-rate" else list(self.options.vm.option)  # vm-* blocks

    def values(self, z: np.ndarray, block: str) -> np.ndarray:
        """The solution values of one variable block as a (windows × options) array."""
        b = self.blocks[block]
        return z[b.offset:b.offset + b.size].reshape(b.shape)


class _Builder:
    """Collects variable blocks and COO constraint blocks, then assembles one sparse matrix."""

    def __init__(self):
        self.blocks: dict[str, VarBlock] = {}
        self.cost, self.lb, self.ub, self.integer = [], [], [], []
        self.rows, self.cols, self.vals = [], [], []
        self.row_lb, self.row_ub, self.row_blocks = [], [], []
        self.num_vars = 0
        self.num_rows = 0

    def add_vars(self, name, shape, cost, lb, ub, integer) -> VarBlock:
        block = VarBlock(name, self.num_vars, shape)
        size = block.size
        self.cost.append(np.broadcast_to(cost, shape).ravel().astype(float))
        self.lb.append(np.broadcast_to(lb, shape).ravel().astype(float))
        self.ub.append(np.broadcast_to(ub, shape).ravel().astype(float))
        self.integer.append(np.full(size, integer))
        self.blocks[name] = block
        self.num_vars += size
        return block

    def add_rows(self, name, count, lb, ub, labels) -> int:
        first = self.num_rows
        self.row_lb.append(np.broadcast_to(np.asarray(lb, float), (count,)).copy())
        self.row_ub.append(np.broadcast_to(np.asarray(ub, float), (count,)).copy())
        self.row_blocks.append((name, first, count, labels))
        self.num_rows += count
        return first

    def add_terms(self, rows, cols, vals) -> None:
        rows, cols, vals = np.broadcast_arrays(np.asarray(rows), np.asarray(cols), np.asarray(vals, float))
        self.rows.append(rows.ravel())
        self.cols.append(cols.ravel())
        self.vals.append(vals.ravel())

    def build(self, windows, options) -> MilpModel:
        cat = (lambda parts, dtype=float: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype))
        matrix = sp.coo_matrix((cat(self.vals), (cat(self.rows, int), cat(self.cols, int))),
                               shape=(self.num_rows, self.num_vars)).tocsr()
        return MilpModel(windows=windows, options=options, blocks=self.blocks, cost=cat(self.cost), lb=cat(self.lb),
                         ub=cat(self.ub), integer=cat(self.integer, bool), matrix=matrix, row_lb=cat(self.row_lb),
                         row_ub=cat(self.row_ub), row_blocks=self.row_blocks)
