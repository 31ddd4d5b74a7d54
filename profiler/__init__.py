"""The profiler: measures MXNet models on CPU shapes and emulated Lambda sizes and writes profile rows.

Importing this package does not import mxnet; only the builders and the worker do, inside the
measuring subprocess, so ``hetplan --help`` stays fast and the planner never pays for mxnet.
"""
