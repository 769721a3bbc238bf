"""The Hu–Shing algorithm: the optimal matrix-chain order in O(k log² k) time.

A chain M_0 … M_{k-1} with dimensions d_0 … d_k is a convex polygon with vertices 0 … k of
weights d_0 … d_k: a parenthesization is a triangulation, a product of a d_x × d_y by a
d_y × d_z matrix is the triangle (x, y, z) and costs w_x w_y w_z (Hu & Shing, "Computation of
matrix chain products", SIAM J. Comput. 11 (1982) and 13 (1984)).

Vertices are ranked by (weight, index), which breaks ties consistently (an infinitesimal
perturbation of the weights, so every statement below for distinct weights carries over).
Let V1 be the smallest vertex, placed at position 0; positions 1 … n-1 follow it around
the polygon. A *potential h-arc* is a pair of positions (a, b), b >= a + 2, a >= 1, such that
every vertex strictly between them ranks above both. Potential h-arcs never cross, so they
form a tree under inclusion (the root being the whole polygon). Hu and Shing prove (with
the gap in their proof of the lemma on V1, V2, V3 closed by Schwartz & Weiss, SIAM J.
Comput. 48 (2019)) that some optimal triangulation consists of potential h-arcs only, each
face between them fanned out from its smallest vertex. A face directly below an arc
h = (a, b) has the smaller of a and b as its smallest vertex, p_h.

What remains is which arcs to keep. With x the weight of the smallest vertex of the face
that encloses arc c:

    kept:     x w_a w_b + I_c         (I_c: the cost below c, fanned from p_c)
    dropped:  E_c(x) = x S_c + sum over children c' of F_c'(x)

where S_c is the sum of w_t w_{t+1} over the sides directly below c, and
F_c(x) = min(x w_a w_b + I_c, E_c(x)). Every E is concave and piecewise linear with integer
lines, and its slopes are never below w_a w_b, so F_c keeps c exactly when x is at or right
of one breakpoint, the arc's *supporting weight*. The functions are built bottom-up, each as
its last line and a heap of breakpoints merged from the children; a breakpoint right of the
weight at which a function is evaluated is never needed again (weights only decrease going
up the tree), so it is dropped. Each arc adds at most one breakpoint, and heaps are merged
smaller into larger: O(k log² k) time, O(k) memory, exact integers throughout (breakpoints
are compared as fractions by cross-multiplication). Top-down, the supporting weights then
decide which arcs are kept, and the faces give the triangles.
"""

import heapq

import numpy as np

__all__ = ["hu_shing"]


class _Break:
    """A breakpoint at x = -di/ds (ds > 0): left of it a function's line is larger by
    ds*x + di than right of it. heapq pops the rightmost breakpoint first."""

    __slots__ = ("di", "ds")

    def __init__(self, ds, di):
        self.ds = ds
        self.di = di

    def __lt__(self, other):
        # -self.di / self.ds > -other.di / other.ds
        return other.di * self.ds > self.di * other.ds


class _Function:
    """A concave piecewise-linear function: its last line slope*x + icpt, its breakpoints."""

    __slots__ = ("heap", "icpt", "slope")

    def __init__(self, slope, icpt, heap):
        self.slope = slope
        self.icpt = icpt
        self.heap = heap

    def truncate(self, x):
        """Drop the breakpoints right of the integer x; return the value at x."""
        heap = self.heap
        while heap and heap[0].di + x * heap[0].ds < 0:   # breakpoint > x
            b = heapq.heappop(heap)
            self.slope += b.ds
            self.icpt += b.di
        return self.slope * x + self.icpt

    def absorb(self, other):
        """self += other (other is consumed)."""
        if len(other.heap) > len(self.heap):
            self.heap, other.heap = other.heap, self.heap
        for b in other.heap:
            heapq.heappush(self.heap, b)
        self.slope += other.slope
        self.icpt += other.icpt

    def min_with_line(self, w, icpt):
        """self = min(self, w*x + icpt), where every slope of self is at least w.

        Returns the supporting weight as (ds, di) (the line wins for x >= -di/ds), or None
        when the line wins everywhere, or False when it wins nowhere.
        """
        heap = self.heap
        s, t = self.slope, self.icpt
        while True:
            ds, di = s - w, t - icpt
            if ds == 0:
                if di < 0:
                    return False                        # parallel, line above: never
            elif not heap or not (heap[0].di * ds <= di * heap[0].ds):
                # the crossing -di/ds lies right of the last breakpoint: found
                heapq.heappush(heap, _Break(ds, di))
                self.slope, self.icpt = w, icpt
                return (ds, di)
            if not heap:
                self.slope, self.icpt = w, icpt
                return None                             # the line wins everywhere
            b = heapq.heappop(heap)
            s += b.ds
            t += b.di


def _potential_arcs(keys):
    """Pairs (a, b), 1 <= a, b - a >= 2, of positions whose vertices in between all rank
    above both; `keys` ranks positions 0 … n-1, with position 0 the smallest."""
    arcs = []
    stack = []
    for j in range(1, len(keys)):
        kj = keys[j]
        while stack and keys[stack[-1]] > kj:
            t = stack.pop()
            if j - t >= 2:
                arcs.append((t, j))
        if stack and j - stack[-1] >= 2:
            arcs.append((stack[-1], j))
        stack.append(j)
    return arcs


def hu_shing(dims):
    """Optimal cost and post-order steps (i, s, j) of the chain with dimensions `dims`.

    Parameters
    ----------
    dims : tuple of int
        d_0 … d_k, k >= 1, non-negative.

    Returns
    -------
    cost : int
        The least number of scalar multiplications.
    steps : ndarray of intp, shape (k - 1, 3)
        The products in post-order, as :func:`matkron._chain_cy.dp_plan` returns them.
    """
    n = len(dims)                    # polygon vertices
    k = n - 1
    if k == 1:
        return 0, np.empty((0, 3), dtype=np.intp)
    r = min(range(n), key=lambda v: (dims[v], v))
    w = [dims[(p + r) % n] for p in range(n)]           # weights by position
    keys = [(w[p], (p + r) % n) for p in range(n)]
    side = [w[t] * w[t + 1] for t in range(n - 1)]        # side (t, t+1)
    prefix = [0]
    for value in side:
        prefix.append(prefix[-1] + value)

    # The arc tree, in pre-order (parents first); node 0 is the root (the whole polygon).
    arcs = sorted(_potential_arcs(keys), key=lambda ab: (ab[0], -ab[1]))
    lo = [0] + [a for a, _ in arcs]
    hi = [n] + [b for _, b in arcs]
    m = len(lo)
    parent = [-1] * m
    children = [[] for _ in range(m)]
    stack = [0]
    for h in range(1, m):
        while stack[-1] != 0 and hi[stack[-1]] <= lo[h]:
            stack.pop()
        parent[h] = stack[-1]
        children[stack[-1]].append(h)
        stack.append(h)
    # p_h, the smaller endpoint: the apex of the face directly below h.
    apex = [0] + [a if keys[a] < keys[b] else b for a, b in arcs]

    def sides_below(h):
        a, b = (1, n - 1) if h == 0 else (lo[h], hi[h])
        total = prefix[b] - prefix[a]
        for c in children[h]:
            total -= prefix[hi[c]] - prefix[lo[c]]
        return total

    functions = [None] * m
    inner = [0] * m                  # I_h
    support = [None] * m             # the supporting weight of each arc, see min_with_line
    for h in range(m - 1, -1, -1):
        p = apex[h]
        x = w[p]
        total = _Function(0, 0, [])
        incident = None              # the child sharing the endpoint p, if any
        for c in children[h]:
            if p in (lo[c], hi[c]):
                incident = c
                value_incident = functions[c].truncate(x)
            total.absorb(functions[c])
            functions[c] = None
        value = total.truncate(x)
        s_h = sides_below(h)
        if h == 0:
            inner[h] = x * s_h + value
            break
        if incident is None:
            # the side at p is the one edge below h that touches p
            s_at_p = side[p] if p == lo[h] else side[p - 1]
            inner[h] = x * (s_h - s_at_p) + value
        else:
            inner[h] = x * s_h + value - value_incident + inner[incident]
        # F_h = min(kept, dropped) as a function of the enclosing face's smallest weight.
        total.slope += s_h
        support[h] = total.min_with_line(w[lo[h]] * w[hi[h]], inner[h])
        functions[h] = total
    cost = inner[0]

    # Top-down: which arcs are kept, and the face (a kept arc or the root) of every edge.
    face = [0] * m
    for h in range(1, m):
        f = face[parent[h]]
        q = apex[f]
        keep = support[h]
        if q in (lo[h], hi[h]) or keep is None:
            kept = True
        elif keep is False:
            kept = False
        else:
            ds, di = keep
            kept = w[q] * ds + di >= 0
        face[h] = h if kept else f

    triangles = []
    owner = [0] * n                  # the innermost arc over side (t, t+1)
    for h in range(m):
        a, b = (1, n - 1) if h == 0 else (lo[h], hi[h])
        t = a
        for c in children[h]:
            owner[t:lo[c]] = [h] * (lo[c] - t)
            t = hi[c]
            if face[c] == c:         # a kept arc is an edge of the face around it
                q = apex[face[h]]
                if q not in (lo[c], hi[c]):
                    triangles.append((q, lo[c], hi[c]))
        owner[t:b] = [h] * (b - t)
    for t in range(1, n - 1):
        q = apex[face[owner[t]]]
        if q not in (t, t + 1):
            triangles.append((q, t, t + 1))
    if len(triangles) != n - 2:
        raise RuntimeError(f"hu_shing: {len(triangles)} triangles for {n} vertices")

    # Triangles to products: (x, y, z), x < y < z in vertex order, multiplies
    # M_x … M_{y-1} by M_y … M_{z-1}; emitted in post-order from the root side (0, k).
    split = {}
    check = 0
    for tri in triangles:
        x, y, z = sorted((p + r) % n for p in tri)
        split[x, z] = y
        check += dims[x] * dims[y] * dims[z]
    if check != cost:
        raise RuntimeError("hu_shing: the triangulation does not have the computed cost")
    steps = np.empty((k - 1, 3), dtype=np.intp)
    pos = k - 1
    todo = [(0, k)]
    while todo:
        x, z = todo.pop()
        if z - x < 2:
            continue
        y = split[x, z]
        pos -= 1
        steps[pos] = (x, y - 1, z - 1)
        todo.append((x, y))
        todo.append((y, z))
    return cost, steps
