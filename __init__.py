"""hetplan: plan ML inference serving across heterogeneous VMs and serverless at the lowest cost that meets an SLO."""

__version__ = "0.1.0"
