"""Ctrl-C reaches long compiled loops: each call below runs for seconds to minutes, and
SIGINT sent half a second into it must raise KeyboardInterrupt (the kernels look for
signals every 0.1 s).

Each case runs in a subprocess, which is interrupted with a real SIGINT.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

_CHILD = """
import signal, traceback
import numpy as np
import matkron
signal.signal(signal.SIGINT, signal.default_int_handler)
{setup}
print("ready", flush=True)
try:
    {call}
except KeyboardInterrupt as exc:
    # Raised inside the kernel, or only once it returned to the interpreter?
    print("interrupted in", traceback.extract_tb(exc.__traceback__)[-1].filename, flush=True)
else:
    print("finished", flush=True)
"""

CASES = {
    # 2 * 10**9 GEMMs of 4x4 matrices: Horner's loop over n.
    "power_jacobian horner": (
        'J = matkron.power_jacobian(0.5 * np.eye(4), 10**9, method="horner")',
        "J @ np.ones(16)",
    ),
    # The O(k³) dynamic program: about 2·10¹⁰ operations.
    "chain_order": ("dims = list(range(1, 5000))", "matkron.chain_order(dims)"),
    # Four GEMMs of 3000³ multiply-adds, each run in column blocks.
    "kron_matvec": (
        "A = np.ones((3000, 3000)); x = np.ones((3000 * 3000, 2), order='F')",
        "matkron.kron_matvec([A, A], x)",
    ),
    # Two GEMMs of 4000³ multiply-adds.
    "multi_dot": ("A = np.ones((4000, 4000))", "matkron.multi_dot([A, A, A])"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_ctrl_c_interrupts(case, tmp_path):
    setup, call = CASES[case]
    script = _CHILD.format(setup=setup, call=call)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        # Uninterruptible, the calls would run for minutes (horner) or finish.
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    # The interpreter raises a signal that arrived during a compiled call once the call
    # returns; a kernel that looks for signals raises it from inside.
    assert out.startswith("interrupted in") and out.strip().endswith(".pyx"), (
        f"{case}: {out!r}\n{err[-2000:]}"
    )
