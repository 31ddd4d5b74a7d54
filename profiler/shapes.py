"""The CPU shapes a model is measured on: local VM shapes (``--vcpus``) and emulated Lambda sizes
(``--lambda-memory``). Pure parsing and arithmetic; nothing here touches the system."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hetplan.errors import HetplanError
from hetplan.planner.catalog.schema import LAMBDA_MAX_VCPUS, LAMBDA_MB_PER_VCPU

LAMBDA_MIN_MB, LAMBDA_MAX_MB = 128, 10240


@dataclass(frozen=True)
class Shape:
    platform: str  # "vm" or "lambda"
    instance_type: str  # "" for lambda
    memory_mb: int
    vcpus: float  # CPU the serving process gets (a fraction for small Lambda sizes)
    cores: int  # CPUs it may run on (affinity) and its thread count

    @property
    def label(self) -> str:
        return self.instance_type if self.platform == "vm" else f"lambda-{self.memory_mb}"

    @property
    def cpu_quota(self) -> float | None:
        """vCPUs of CPU-time quota to enforce: a Lambda's share; VMs get whole cores by affinity."""
        return self.vcpus if self.platform == "lambda" else None

    @property
    def memory_limit_mb(self) -> int | None:
        return self.memory_mb if self.platform == "lambda" else None


def parse_int_list(text: str, what: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4]; a HetplanError for anything that is not a list of positive integers."""
    values = []
    for part in str(text).split(","):
        part = part.strip()
        if not part.isdigit() or int(part) <= 0:
            raise HetplanError(f"bad {what} '{text}': give positive whole numbers separated by commas, e.g. 1,2")
        values.append(int(part))
    return sorted(set(values))


def lambda_vcpus(memory_mb: float) -> float:
    """The CPU share AWS gives a function: 1 vCPU at 1,769 MB, proportional below and above, at most 6."""
    return min(memory_mb / LAMBDA_MB_PER_VCPU, LAMBDA_MAX_VCPUS)


def vm_shapes(vcpus: list[int], host_cpus: int, memory_mb: int, instance_type: str | None) -> list[Shape]:
    """Local shapes named ``local-Nvcpu``, or the one whole instance when ``--instance-type`` is given."""
    for count in vcpus:
        if count > host_cpus:
            raise HetplanError(f"bad vcpus {count}: this machine lets the profiler use {host_cpus} CPU(s)")
    if instance_type:
        if len(vcpus) > 1:
            raise HetplanError("with --instance-type give at most one --vcpus value: a profile row names "
                               "the instance, so it is measured as a whole")
        return [Shape("vm", instance_type, memory_mb, float(vcpus[0]), vcpus[0])]
    return [Shape("vm", f"local-{n}vcpu", memory_mb, float(n), n) for n in vcpus]


def lambda_shapes(memories: list[int], host_cpus: int) -> list[Shape]:
    shapes = []
    for memory in memories:
        if not LAMBDA_MIN_MB <= memory <= LAMBDA_MAX_MB:
            raise HetplanError(f"Lambda memory {memory} MB is outside {LAMBDA_MIN_MB}-{LAMBDA_MAX_MB} MB")
        share = lambda_vcpus(memory)
        shapes.append(Shape("lambda", "", memory, round(share, 4), min(host_cpus, math.ceil(share))))
    return shapes


def emulable(shape: Shape, host_cpus: int) -> bool:
    """Whether this host has the cores to give the shape its full CPU share."""
    return shape.vcpus <= host_cpus
