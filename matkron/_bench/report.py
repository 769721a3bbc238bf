"""Presenting results: value formats, the table, the CSV file, the plot and a progress bar."""

import csv
import math
import sys
from pathlib import Path

__all__ = [
    "NA",
    "Progress",
    "format_bytes",
    "format_table",
    "format_time",
    "format_value",
    "plot",
    "summarize",
    "write_csv",
]

# The value of a cell that this matkron cannot measure: a feature it does not have yet
# (detected with hasattr). Printed and saved as is; summaries, checks and plots skip it.
NA = "n/a"

_TIME_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))
_BYTE_UNITS = ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))


def _three_digits(value):
    """`value` >= 0 with three significant digits (no exponent below 1000)."""
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def format_time(seconds):
    """A duration with three significant digits and a unit.

    Examples
    --------
    >>> format_time(2.5e-6), format_time(0.0123), format_time(3.0)
    ('2.50 µs', '12.3 ms', '3.00 s')
    """
    if seconds < 0:  # a difference of times (an extra cost) may come out negative
        return "-" + format_time(-seconds)
    seconds = float(f"{seconds:.3g}")
    for scale, unit in _TIME_UNITS:
        if seconds >= scale:
            break
    return f"{_three_digits(seconds / scale)} {unit}"


def format_bytes(nbytes):
    """A byte count with three significant digits and a binary unit.

    Examples
    --------
    >>> format_bytes(512), format_bytes(65536), format_bytes(2**31)
    ('512 B', '64.0 KiB', '2.00 GiB')
    """
    rounded = float(f"{nbytes:.3g}")
    for scale, unit in _BYTE_UNITS:
        if rounded >= scale:
            return f"{_three_digits(nbytes / scale)} {unit}"
    return f"{nbytes} B"


def format_value(value, kind):
    """Format a table cell of a column of `kind` (see :class:`~.suite.Column`).

    None (not measured) prints as '-', :data:`NA` (not available in this matkron) as 'n/a'.

    Examples
    --------
    >>> format_value(1.234, "ratio"), format_value(None, "time"), format_value(NA, "time")
    ('1.23', '-', 'n/a')
    """
    if value is None:
        return "-"
    if value is NA:
        return NA
    if kind == "time":
        return format_time(value)
    if kind == "bytes":
        return format_bytes(value)
    if kind == "ratio":
        return _three_digits(value) if value < 1000 else f"{value:.3g}"
    return str(value)


def format_table(columns, rows):
    """The rows as a fixed-width text table, numbers right-aligned.

    Parameters
    ----------
    columns : list of Column
        The columns, in order.
    rows : list of dict
        The values by column key.

    Returns
    -------
    str
        A header line, a rule and one line per row.

    Examples
    --------
    >>> from matkron._bench.suite import Column
    >>> print(format_table([Column("n", "n", "int"), Column("t", "time", "time")],
    ...                    [{"n": 64, "t": 1e-6}]))
     n     time
    --  -------
    64  1.00 µs
    """
    cells = [[format_value(row[c.key], c.kind) for c in columns] for row in rows]
    widths = [
        max(len(c.header), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)
    ]
    lines = ["  ".join(c.header.rjust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(v.rjust(w) for v, w in zip(line, widths)) for line in cells)
    return "\n".join(lines)


def summarize(columns, rows):
    """A plain summary of every ratio column: its median and range over the cells.

    Parameters
    ----------
    columns : list of Column
        The columns; those of kind "ratio" are summarized, with their table headers.
    rows : list of dict
        The results (None where a cell was not measured).

    Returns
    -------
    list of str
        A heading and one line per ratio column measured; empty when there is none.

    Examples
    --------
    >>> from matkron._bench.suite import Column
    >>> lines = summarize([Column("r", "CSR/mk", "ratio")], [{"r": 2.0}, {"r": 3.0}, {"r": 1.5}])
    >>> for line in lines:
    ...     print(line)
    summary (ratios as defined in the legend; other/matkron above 1: matkron is faster):
      CSR/mk  median 2.00, from 1.50 to 3.00 over 3 cells
    """
    lines = []
    for column in columns:
        if column.kind != "ratio":
            continue
        values = sorted(row[column.key] for row in rows
                        if row.get(column.key) not in (None, NA))
        if not values:
            continue
        n = len(values)
        median = values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2
        lines.append((column.header, median, values[0], values[-1], n))
    if not lines:
        return []
    width = max(len(header) for header, *_ in lines)
    return ["summary (ratios as defined in the legend; other/matkron above 1: matkron is "
            "faster):"] + [
        f"  {header.ljust(width)}  median {format_value(median, 'ratio')}, from "
        f"{format_value(lo, 'ratio')} to {format_value(hi, 'ratio')} over {n} "
        f"cell{'s' if n != 1 else ''}"
        for header, median, lo, hi, n in lines
    ]


def write_csv(path, columns, rows):
    """Write one CSV line per row, headed by the column keys (None as an empty field).

    The parent directory is created if missing. Floats keep full precision.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([c.key for c in columns])
        for row in rows:
            writer.writerow(["" if row[c.key] is None else row[c.key] for c in columns])


# Panels per row of a plot: 3 × 4.8 in at 110 dpi is 1584 px.
PLOT_COLUMNS = 3


def _tick_label(value):
    """A short tick label: 1024 as 1024, 16384 as 16k, 2097152 as 2.1M."""
    if value >= 10**6:
        return f"{value / 10**6:.2g}M"
    if value >= 10**4:
        return f"{value / 1000:.3g}k"
    return str(value)


def plot(path, spec, columns, rows):
    """Draw the times of `spec` (a :class:`~.suite.PlotSpec`) into a PNG file.

    Parameters
    ----------
    path : str or Path
        The PNG file; its directory is created if missing.
    spec : PlotSpec
        The x key, the panel key and the series.
    columns : list of Column
        Give the series their labels (the table headers).
    rows : list of dict
        The results.

    Returns
    -------
    bool
        False, having written nothing, when matplotlib is not installed.
    """
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import NullLocator
    except ImportError:
        return False
    headers = {c.key: c.header for c in columns}
    panels = list(dict.fromkeys(row[spec.panel] for row in rows))
    # At most PLOT_COLUMNS panels a row (about 1600 px at the saved resolution), one colour
    # per series in every panel, one legend for the figure.
    ncols = min(len(panels), PLOT_COLUMNS)
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(4.8 * ncols, 1.0 + 3.6 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colours = {key: f"C{i % 10}" for i, key in enumerate(spec.series)}
    handles = {}
    for ax, panel in zip(axes, panels):
        selected = [row for row in rows if row[spec.panel] == panel]
        for key in spec.series:
            points = [(row[spec.x], row[key]) for row in selected
                      if row[key] is not None and row[key] is not NA]
            if points:
                style = "--" if key in spec.dashed else "-"
                (line,) = ax.plot(*zip(*points), style, marker="o", markersize=3,
                                  color=colours[key], label=headers[key])
                handles.setdefault(key, line)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ticks = sorted({row[spec.x] for row in selected})
        ax.set_xticks(ticks, [_tick_label(t) for t in ticks], rotation=30 if len(ticks) > 3
                      else 0)
        # No minor ticks on x (only the sizes run); on y they label a panel within a decade.
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(spec.x)
        ax.set_title(panel, fontsize="medium")
        ax.grid(True, which="major", alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax in axes[::ncols]:
        ax.set_ylabel("median time per call [s]")
    ordered = [handles[key] for key in spec.series if key in handles]
    fig.legend(ordered, [h.get_label() for h in ordered], loc="outside lower center",
               ncols=min(len(ordered), 6), fontsize="small")
    fig.suptitle(spec.title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return True


class Progress:
    """A text progress bar on stderr: ``[#####.....]  5/10  label``.

    On a terminal the bar is redrawn in place; otherwise each step prints one line.
    Use it as a context manager; :meth:`step` announces the step about to run.

    Parameters
    ----------
    total : int
        The number of steps.
    stream : file, optional
        Where to draw; sys.stderr by default.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with Progress(2, out) as progress:
    ...     progress.step("first")
    ...     progress.step("second")
    >>> print(out.getvalue().splitlines()[-1])
    [##############################]  2/2  done
    """

    width = 30

    def __init__(self, total, stream=None):
        self.total = total
        self.done = 0
        self.stream = sys.stderr if stream is None else stream
        self._live = self.stream.isatty()
        self._shown = 0

    def _draw(self, label):
        filled = math.floor(self.width * self.done / self.total) if self.total else self.width
        digits = len(str(self.total))
        bar = "#" * filled + "." * (self.width - filled)
        line = f"[{bar}]  {self.done:{digits}d}/{self.total}  {label}"
        if self._live:
            self.stream.write("\r" + line.ljust(self._shown))
            self._shown = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def step(self, label):
        """Show that the step `label` starts (the steps before it are done)."""
        self._draw(label)
        self.done += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.done = self.total
            self._draw("done")
        if self._live:
            self.stream.write("\n")
            self.stream.flush()
        return False
