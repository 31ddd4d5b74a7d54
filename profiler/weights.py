"""Trained weights from ``--weights DIR``: finding a model's file and loading it into a network.

Accepted, in this order: Gluon parameters ``<model>.params``, ``<architecture>.params`` or the zoo's
``<architecture>-<hash>.params``; or a legacy MXNet symbolic checkpoint ``<model>-symbol.json`` with
its newest ``<model>-NNNN.params`` (how the MXNet model gallery ships CaffeNet, ResNet-200 etc.),
loaded as a SymbolBlock whose input is named ``data``.
"""

from __future__ import annotations

from pathlib import Path

from hetplan.errors import HetplanError

SYMBOL_SUFFIX = "-symbol.json"


def find_weights(weights_dir: Path | None, name: str, arch: str) -> str | None:
    """The weights file for a model (the symbol file for a symbolic checkpoint), or None without a DIR."""
    if weights_dir is None:
        return None
    candidates = [weights_dir / f"{name}.params", weights_dir / f"{arch}.params",
                  *sorted(weights_dir.glob(f"{arch}-" + "[0-9a-f]" * 8 + ".params"))]
    symbol = weights_dir / f"{name}{SYMBOL_SUFFIX}"
    if symbol.is_file() and _checkpoints(symbol):
        candidates.append(symbol)
    for path in candidates:
        if path.is_file():
            return str(path)
    raise HetplanError(f"no weights for '{name}' in {weights_dir}: expected {name}.params, {arch}.params "
                       f"or {name}{SYMBOL_SUFFIX} with {name}-0000.params")


def _checkpoints(symbol: Path) -> list[Path]:
    prefix = symbol.name[: -len(SYMBOL_SUFFIX)]
    return sorted(symbol.parent.glob(f"{prefix}-" + "[0-9]" * 4 + ".params"))


def load_network(arch: str, weights: str | None):
    """The network with its weights (loaded, or initialized when ``weights`` is None), hybridized."""
    import mxnet as mx

    from hetplan.profiler.architectures import build

    if weights and weights.endswith(SYMBOL_SUFFIX):
        net = mx.gluon.SymbolBlock.imports(weights, ["data"], str(_checkpoints(Path(weights))[-1]), ctx=mx.cpu())
    else:
        net = build(arch)
        if weights:
            net.load_parameters(weights, ctx=mx.cpu())
        else:
            net.initialize(mx.init.Xavier(), ctx=mx.cpu())
    net.hybridize(static_alloc=True, static_shape=True)
    return net
