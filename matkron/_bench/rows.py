"""The rows of a suite's table: building them, their ratio columns, and targets checked over them.

Every suite builds one dict per cell, keyed by its :class:`~.suite.Column` keys:

>>> from matkron._bench.suite import Column
>>> columns = [Column("n", "n", "int"), Column("fast_s", "fast", "time"),
...            Column("slow_s", "slow", "time"),
...            Column("slow/fast", "slow/fast", "ratio", ratio_of=("slow_s", "fast_s"))]
>>> rows = [add_ratios(new_row(columns, n=n, fast_s=1.0, slow_s=s), columns)
...         for n, s in ((8, 3.0), (16, 1.5), (32, None))]
>>> [row["slow/fast"] for row in rows]
[3.0, 1.5, None]
>>> result = check(rows, "slow/fast", "fast >= 2x faster", operator.ge, 2.0,
...                cell=lambda row: f"n={row['n']}")
>>> result.passed, result.detail
(False, 'worst 1.50 at n=16; missed at n=16 (1.50); not run at n=32')

Suites print these :class:`~.suite.Check` results only with ``--check``.
"""

import operator

from .report import NA, format_value
from .suite import Check

__all__ = ["add_ratios", "check", "new_row"]

# The comparisons a target may use; for the first two the largest value is the worst.
_AT_MOST = (operator.le, operator.lt)
_COMPARISONS = (*_AT_MOST, operator.ge, operator.gt)


def new_row(columns, **values):
    """A row with every column of `columns` set to None (not measured), then `values`.

    Keys of `values` that are no column (a plot's panel label, a detail the table does
    not show) are kept.

    Examples
    --------
    >>> from matkron._bench.suite import Column
    >>> new_row([Column("n", "n", "int"), Column("t", "t", "time")], n=4, panel="a")
    {'n': 4, 't': None, 'panel': 'a'}
    """
    row = {column.key: None for column in columns}
    row.update(values)
    return row


def add_ratios(row, columns):
    """Fill in every ratio column of `columns` declared with ``ratio_of``; return `row`.

    A ratio is None where its numerator or denominator was not measured (None or absent),
    and :data:`~.report.NA` where one of them is.

    Examples
    --------
    >>> from matkron._bench.suite import Column
    >>> add_ratios({"a_s": 2.0, "b_s": 0.5}, [Column("a/b", "a/b", "ratio", ("a_s", "b_s"))])
    {'a_s': 2.0, 'b_s': 0.5, 'a/b': 4.0}
    """
    for column in columns:
        if column.ratio_of:
            num, den = (row.get(key) for key in column.ratio_of)
            if num is NA or den is NA:
                row[column.key] = NA
            else:
                row[column.key] = None if num is None or den is None else num / den
    return row


def check(rows, key, target, compare, bound, cell, kind="ratio"):
    """Check ``compare(value, bound)`` over every row where the value was measured.

    Parameters
    ----------
    rows : list of dict
        The rows the target covers.
    key : str or callable
        The row key of the value, or a function of the row returning it (None: not
        measured).
    target : str
        The target, in words.
    compare : {operator.le, operator.lt, operator.ge, operator.gt}
        How a value must compare with `bound`; with ``le`` and ``lt`` the largest value is
        the worst, else the smallest.
    bound : float
        The bound of the target.
    cell : callable
        Names a row's cell in the detail, ``cell(row) -> str``.
    kind : str, optional
        How values print (a :class:`~.suite.Column` kind): "ratio" or "time".

    Returns
    -------
    Check
        Passed when at least one row was measured and every measured row meets the target;
        the detail names the worst cell, the cells that missed and those not run (when
        some were), or says "not measured". When no row was measured and some value is
        :data:`~.report.NA` (a feature this matkron lacks), passed is None and the detail
        "n/a".

    Examples
    --------
    >>> rows = [{"case": "a", "t": 0.1}, {"case": "b", "t": 0.3}]
    >>> check(rows, "t", "under 0.2 s", operator.lt, 0.2, lambda row: row["case"],
    ...       kind="time").detail
    'worst 300 ms at b; missed at b (300 ms)'
    """
    if compare not in _COMPARISONS:
        raise ValueError(f"compare must be operator.le, lt, ge or gt; got {compare!r}")
    value = key if callable(key) else (lambda row: row.get(key))
    measured = [row for row in rows if value(row) is not None and value(row) is not NA]
    if not measured:
        if any(value(row) is NA for row in rows):
            return Check(None, target, NA)
        return Check(False, target, "not measured")
    unmeasured = [cell(row) for row in rows if value(row) is None or value(row) is NA]
    misses = [row for row in measured if not compare(value(row), bound)]
    worst = (max if compare in _AT_MOST else min)(measured, key=value)
    parts = [f"worst {format_value(value(worst), kind)} at {cell(worst)}"]
    if misses:
        parts.append("missed at " + ", ".join(
            f"{cell(row)} ({format_value(value(row), kind)})" for row in misses))
    if unmeasured:
        parts.append(f"not run at {', '.join(dict.fromkeys(unmeasured))}")
    return Check(not misses, target, "; ".join(parts))
