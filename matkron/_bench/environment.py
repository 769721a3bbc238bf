"""The machine and software a benchmark ran on, for the header of its report."""

import datetime
import os
import platform
import sys
from pathlib import Path

import numpy as np
import scipy
import threadpoolctl

import matkron

from . import features, machine

__all__ = ["describe"]

# Environment variables that change which BLAS kernels run, or on how many threads.
_BLAS_VARIABLES = ("OPENBLAS_", "OMP_", "MKL_", "BLIS_", "GOTO_")


def cpu_model():
    """The CPU model name from /proc/cpuinfo, else :func:`platform.processor`."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _cpu_counts():
    logical = os.cpu_count()
    text = f"{logical} logical CPUs"
    if hasattr(os, "sched_getaffinity"):
        usable = len(os.sched_getaffinity(0))
        if usable != logical:
            text += f", {usable} usable by this process"
    return text


def _load_average():
    """The load line, where the platform reports it: other work competes for the cores."""
    if not hasattr(os, "getloadavg"):
        return []
    one, five, fifteen = os.getloadavg()
    return [f"load       {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min averages)"]


def _blas_owner(filepath):
    """Which package ships the library at `filepath`: numpy, scipy, or the file's folder."""
    parts = Path(filepath).parts
    for name in ("numpy", "scipy"):
        if name in parts or f"{name}.libs" in parts:
            return name
    return Path(filepath).parent.name


def _peak():
    """The FMA peak line (:func:`~.machine.fma_peak`, measured on the first call)."""
    peak = machine.fma_peak()
    if peak is None:
        return ["FMA peak   n/a (this matkron build has no matkron._machine_cy probe)"]
    return [peak.describe()]


def describe(threads):
    """Header lines: date, platform, CPU, load, versions, FMA peak, every BLAS and its threads.

    Parameters
    ----------
    threads : int
        The BLAS thread count pinned with :func:`threadpoolctl.threadpool_limits`; call
        this inside that context so the reported thread counts are the pinned ones.

    Returns
    -------
    list of str
        The lines, without line ends.
    """
    lines = [
        f"date       {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"platform   {platform.platform()}",
        f"CPU        {cpu_model()}, {_cpu_counts()}",
        f"python     {platform.python_implementation()} {sys.version.split()[0]}",
        *_load_average(),
        (
            f"libraries  numpy {np.__version__}, scipy {scipy.__version__}, "
            f"matkron {matkron.__version__} ({Path(matkron.__file__).parent}), "
            f"threadpoolctl {threadpoolctl.__version__}"
        ),
        *_peak(),
        f"threads    pinned to {threads}: the BLAS pools (threadpoolctl.threadpool_limits"
        f"(limits={threads})) and matkron's own (matkron.threads({threads}); "
        f"matkron.get_num_threads() = {features.num_threads()})",
    ]
    for info in threadpoolctl.threadpool_info():
        # The kernel (OpenBLAS's architecture: the one it runs on this CPU, or the one
        # OPENBLAS_CORETYPE forces) decides what a GEMM floor is worth.
        details = ", ".join(
            f"{label}{info[key]}"
            for key, label in (("architecture", "kernel "), ("threading_layer", ""))
            if info.get(key) not in (None, "")
        )
        lines.append(
            f"  {info['user_api']} of {_blas_owner(info['filepath'])}: "
            f"{info['internal_api']} {info.get('version')} ({details}), "
            f"{info['num_threads']} thread(s), {Path(info['filepath']).name}"
        )
    variables = sorted(
        f"{key}={value}" for key, value in os.environ.items() if key.startswith(_BLAS_VARIABLES)
    )
    if variables:
        lines.append(f"  environment: {' '.join(variables)}")
    return lines
