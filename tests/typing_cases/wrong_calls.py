"""Wrong calls that ``mypy --strict`` must report (tests/test_typing.py lists them)."""

import numpy as np

import matkron

A = np.eye(3)
matkron.chain_order("abc")  # dims are integers
matkron.power_jacobian(A, 2.5)  # the power is an integer
matkron.kron(A, A).no_such_method()  # not a method of KronOperator
matkron.kron_order([(2, 3)], m="4")  # m is a count
matkron.kronsum(A).expm_multiply(np.ones(3), t="1")  # a time is a number
