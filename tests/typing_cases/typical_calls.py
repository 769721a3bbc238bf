"""Typical calls of matkron's public API: ``mypy --strict`` must accept all of them."""

import numpy as np
import scipy.sparse
from numpy.typing import NDArray
from scipy.sparse.linalg import LinearOperator

import matkron

A = np.eye(3)
B = np.ones((2, 2))
x: NDArray[np.float64] = np.ones(6)

y: NDArray[np.float64] = matkron.kron_matvec([A, B], x)
X = matkron.unvec(matkron.vec(np.ones((2, 3))), (2, 3))
order, flops = matkron.kron_order([(3, 3), (2, 2)], m=4)

K = matkron.kron(A, matkron.identity(2), matkron.diagonal([1.0, 2.0]), scipy.sparse.eye(2))
z = K @ np.ones(K.shape[1])
w, V = K.eigh()
sign, logdet = K.slogdet()
scaled: matkron.KronOperator = (2 * K / 3) ** 2
norm: float = K.norm("fro")
root = K.power(0.5).sqrtm()

S = K + 0.5 * matkron.identity(K.shape[0])
b = S.solve(np.ones(K.shape[0]))
quad, ld = matkron.inv_quad_logdet(S, np.ones(K.shape[0]))
inverse: LinearOperator = S.inv()

L = matkron.kronsum(A, scipy.sparse.eye(4))
heat = L.expm_multiply(np.ones(L.shape[0]), [0.0, 0.5, 1.0])
G = matkron.solve_continuous_lyapunov(-A, np.eye(3))
Y = matkron.solve_sylvester(A, 2 * A, np.ones((3, 3)))

plan = matkron.chain_order([10, 100, 5, 50])
cost: int = plan.cost
P = matkron.multi_dot([np.ones((10, 100)), np.ones((100, 5)), np.ones((5, 50))])

J = matkron.power_jacobian(A, 3)
D = matkron.frechet_power(A, np.ones((3, 3)), 3)
terms = J.kron_terms()
dense_J = J.todense()

F = matkron.frechet("expm", A, np.ones((3, 3)))
L_op = matkron.frechet("sqrtm", A + 2 * np.eye(3))
kappa: float = matkron.cond("expm", A)
chain = matkron.jacobian_chain([np.ones((4, 3)), np.ones((2, 4))])
full = chain.todense()

matkron.set_num_threads(2)
count: int = matkron.get_num_threads()
with matkron.threads(1):
    y_serial = K @ np.ones(K.shape[1])
blas: dict[str, str | int] = matkron.blas_info()
