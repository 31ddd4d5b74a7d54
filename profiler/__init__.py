"""The profiler: measures MXNet models on CPU shapes and emulated Lambda sizes and writes profile rows.

Modules, in the order a run uses them:
  catalog        model names -> architecture, input size, published accuracy (data/models.csv)
  architectures  network builders: the Gluon zoo, the paper models the zoo lacks, plugin models
  caffenet, googlenet, resnext, preresnet   those paper models as Gluon HybridBlocks
  shapes         --vcpus / --lambda-memory -> the CPU shapes to measure on
  runner         one subprocess per (model, shape, batch), pinned and limited, rows appended as they finish
  cgroups        the CPU quota and memory limit of an emulated Lambda size
  worker         the measuring subprocess: load, warm up, time calls, report peak memory
  weights, accuracy   trained weights from --weights, top-1/top-5 on --dataset
  stats, rows, profile_csv   percentiles and stopping rule, schema rows, the CSV file

Importing this package does not import mxnet; only the builders and the worker do, inside the
measuring subprocess, so ``hetplan --help`` stays fast and the planner never pays for mxnet.
"""
