"""Real CPU quota and memory limit for one measuring process: a child cgroup of the profiler's own
cgroup (v2 ``cpu.max``/``memory.max``, or v1 ``cpu.cfs_quota_us``/``memory.limit_in_bytes``),
created before the process starts and removed after it ends.

Children of our own cgroup, not of the root: the limits then nest inside whatever limits the
profiler already runs under, and nothing outside our subtree is touched.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

# A 10 ms period, not the kernel's default 100 ms: an inference call of tens of ms then sees its share
# smoothly, instead of running unthrottled in one period and stalling in the next.
PERIOD_US = 10_000
MIN_QUOTA_US = 1_000  # the kernel's smallest quota; small shares get a longer period instead
_counter = itertools.count()


@dataclass(frozen=True)
class Cgroup:
    version: str  # "v1" or "v2"
    cpu_dir: Path
    memory_dir: Path  # the same folder as cpu_dir under v2

    def procs_files(self) -> list[Path]:
        """The files a process writes its pid to, to join (one folder under v2, two under v1)."""
        return [folder / "cgroup.procs" for folder in dict.fromkeys((self.cpu_dir, self.memory_dir))]

    def oom_killed(self, sigkilled: bool) -> bool:
        """Whether the kernel's out-of-memory killer struck inside this cgroup. Kernels without an
        ``oom_kill`` counter (v1 before 4.13) only show that the limit was hit, so then also require
        that the process died of SIGKILL."""
        name = "memory.events" if self.version == "v2" else "memory.oom_control"
        for line in _read(self.memory_dir / name).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return value.strip() != "0"
        return sigkilled and _read(self.memory_dir / "memory.failcnt").strip() not in ("", "0")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def own_dir_v1(controller: str) -> Path | None:
    """Our own v1 cgroup folder for ``controller``, from /proc/self/cgroup and /proc/self/mounts."""
    own = None
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            own = path
    if own is None:
        return None
    for line in _read(Path("/proc/self/mounts")).splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[2] == "cgroup" and controller in fields[3].split(","):
            return Path(fields[1] + own)
    return None


def own_dir_v2() -> Path | None:
    """Our own cgroup v2 folder, if it offers the cpu and memory controllers."""
    own = next((line[3:] for line in _read(Path("/proc/self/cgroup")).splitlines() if line.startswith("0::")), None)
    for line in _read(Path("/proc/self/mounts")).splitlines():
        fields = line.split()
        if own is not None and len(fields) > 2 and fields[2] == "cgroup2":
            folder = Path(fields[1] + own)
            if {"cpu", "memory"} <= set(_read(folder / "cgroup.controllers").split()):
                return folder
    return None


def create(vcpus: float, memory_mb: int) -> Cgroup:
    """A new cgroup with ``vcpus`` of CPU time per period and ``memory_mb`` MiB of memory (OSError if not allowed)."""
    name = f"hetplan-profile-{os.getpid()}-{next(_counter)}"
    period = max(PERIOD_US, math.ceil(MIN_QUOTA_US / vcpus))
    quota = round(vcpus * period)
    limit = str(memory_mb * 2**20)
    parent = own_dir_v2()
    if parent is not None:
        (parent / "cgroup.subtree_control").write_text("+cpu +memory")
        folder = parent / name
        folder.mkdir()
        group = Cgroup("v2", folder, folder)
        try:
            (folder / "cpu.max").write_text(f"{quota} {period}")
            (folder / "memory.max").write_text(limit)
            if (folder / "memory.swap.max").exists():
                (folder / "memory.swap.max").write_text("0")
        except OSError:
            remove(group)
            raise
        return group
    cpu_parent, memory_parent = own_dir_v1("cpu"), own_dir_v1("memory")
    if cpu_parent is None or memory_parent is None:
        raise OSError("no cgroup v2 with cpu+memory and no cgroup v1 cpu and memory hierarchies")
    group = Cgroup("v1", cpu_parent / name, memory_parent / name)
    group.cpu_dir.mkdir()
    try:
        group.memory_dir.mkdir()
        (group.cpu_dir / "cpu.cfs_period_us").write_text(str(period))
        (group.cpu_dir / "cpu.cfs_quota_us").write_text(str(quota))
        (group.memory_dir / "memory.limit_in_bytes").write_text(limit)
        if (group.memory_dir / "memory.memsw.limit_in_bytes").exists():
            (group.memory_dir / "memory.memsw.limit_in_bytes").write_text(limit)  # no swapping out of the limit
    except OSError:
        remove(group)
        raise
    return group


def remove(group: Cgroup) -> None:
    """Remove the cgroup's folders; a just-exited process can linger a moment, so retry briefly."""
    for folder in dict.fromkeys((group.cpu_dir, group.memory_dir)):
        for attempt in range(50):
            try:
                folder.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)


def support() -> tuple[bool, str]:
    """(usable, reason): whether this process can create limited cgroups, found by trying once."""
    if os.geteuid() != 0:
        return False, "not running as root"
    try:
        group = create(1.0, 256)
    except OSError as error:
        return False, f"cgroups not writable here ({error})"
    remove(group)
    return True, f"cgroup {group.version}"
