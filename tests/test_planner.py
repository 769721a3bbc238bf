"""The measuring planner (matkron.set_planner) and its wisdom, against np.kron.

Every call during and after a measurement is checked against the dense oracle; the plan
kept is one of the candidates and is rebuilt unchanged by the wisdom loader; "estimate"
mode never measures; wisdom exported here loads in a new process; wisdom from another
machine, malformed wisdom and altered plans are refused.
"""

import json
import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import matkron
from matkron import _kron_cy, _kron_plan_cy

from .conftest import (
    DTYPES,
    assert_product,
    columns,
    make_factors,
    operand_shape,
    product_oracle,
    random_array,
    rows,
    with_layout,
)
from .test_kron_matvec import IDENTITY_SHAPES, SHAPES
from .test_multi import rectangular_spec

CALLS = 15  # calls of each product: the first, 2 timings of up to 6 candidates, and after
MULTI_SPECS = [rectangular_spec(np.random.default_rng(k), k) for k in (3, 4, 5, 6)]
SPECS = SHAPES + IDENTITY_SHAPES + MULTI_SPECS


def _ids(spec):
    return "x".join(f"I{s[1]}" if s[0] == "I" else f"{s[0]}x{s[1]}" for s in spec)


@pytest.fixture
def measure_all():
    """The "measure" planner with every product measured (no size threshold), and no
    plans before or after the test."""
    old = _kron_plan_cy._set_measure_threshold(0.0)
    matkron.forget_wisdom()
    try:
        with matkron.planner("measure"):
            yield
    finally:
        _kron_plan_cy._set_measure_threshold(old)
        matkron.forget_wisdom()


def _stats():
    return _kron_plan_cy._planner_stats()


def _product_case(rng, spec, m, dtype, x_layout):
    factors = make_factors(rng, spec, dtype)
    x = with_layout(random_array(rng, operand_shape(columns(spec), m), dtype), x_layout)
    return factors, x


def _same_plan(described, entry):
    keys = (
        "order",
        "variants",
        "own",
        "x_c_kind",
        "by_column",
        "x_direct",
        "out_direct",
        "out_c_kind",
    )
    return all(described[key] == entry[key] for key in keys)


# Every dtype with x Fortran- and C-ordered; a strided x (copied first) with two.
CASES = [(d, layout) for d in DTYPES for layout in ("F", "C")] + [
    (np.dtype(np.float64), "strided"),
    (np.dtype(np.complex64), "strided"),
]


@pytest.mark.parametrize("out_layout", [None, "F"])
@pytest.mark.parametrize("m", [None, 3], ids=lambda m: f"m={m}")
@pytest.mark.parametrize("dtype, x_layout", CASES, ids=lambda c: str(c))
@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_every_call_matches_kron(spec, dtype, x_layout, m, out_layout, rng, measure_all):
    factors, x = _product_case(rng, spec, m, dtype, x_layout)
    out = None
    if out_layout is not None:
        out = with_layout(np.zeros(operand_shape(rows(spec), m), dtype), out_layout)
    reference, bound = product_oracle(factors, x)
    for _ in range(CALLS):
        y = matkron.kron_matvec(factors, x, out=out)
        assert_product(y, factors, x, dtype, reference=reference, bound=bound)
        if out is not None:
            assert y is out
            out[...] = np.nan  # a stale result must not pass the next check
    stats = _stats()
    assert stats["measuring"] == 0, stats
    candidates, chosen = _kron_plan_cy._last_measurement()
    if stats["measured"]:
        # The plan kept is one of the candidates (at most 6), and an admissible plan:
        # the planner rebuilds it unchanged with its choices pinned.
        assert 2 <= len(candidates) <= 6
        (entry,) = json.loads(matkron.export_wisdom())["plans"]
        assert _same_plan(candidates[chosen], entry)
        assert _kron_plan_cy.load_wisdom_entry(entry, False)
    else:
        assert stats["final"] == 1, stats  # a single candidate: nothing to measure


def test_measured_after_at_most_13_calls(rng, measure_all):
    factors = [random_array(rng, (8, 9), np.float64), random_array(rng, (7, 6), np.float64)]
    x = random_array(rng, (54, 4), np.float64)
    calls = 0
    while not _stats()["measured"]:
        matkron.kron_matvec(factors, x)
        calls += 1
        assert calls <= 13
    candidates, chosen = _kron_plan_cy._last_measurement()
    assert calls == 1 + 2 * len(candidates)
    assert all(c["seconds"] > 0 for c in candidates)
    order, variants, c_ordered, by_column = _kron_cy.kron_plan(tuple(factors), x)
    names = ("normal", "rotate-front", "rotate-back")
    assert list(order) == candidates[chosen]["order"]
    assert [names.index(v) for v in variants] == candidates[chosen]["variants"]
    assert by_column == candidates[chosen]["by_column"]


def test_estimate_mode_never_measures(rng, measure_all):
    factors = [random_array(rng, (8, 9), np.float64), random_array(rng, (7, 6), np.float64)]
    x = random_array(rng, (54, 4), np.float64)
    estimate = _kron_cy.kron_plan(tuple(factors), x)
    with matkron.planner("estimate"):
        assert matkron.get_planner() == "estimate"
        for _ in range(CALLS):
            assert_product(matkron.kron_matvec(factors, x), factors, x, np.float64)
        assert _stats() == {"final": 0, "estimated": 1, "measuring": 0, "measured": 0}
        assert _kron_cy.kron_plan(tuple(factors), x) == estimate
    assert matkron.get_planner() == "measure"


def test_small_products_keep_the_estimate(rng):
    # The default threshold: a product of a few microseconds is never timed.
    matkron.forget_wisdom()
    factors = [random_array(rng, (3, 4), np.float64), random_array(rng, (5, 2), np.float64)]
    x = random_array(rng, 8, np.float64)
    for _ in range(CALLS):
        assert_product(matkron.kron_matvec(factors, x), factors, x, np.float64)
    assert _stats() == {"final": 1, "estimated": 0, "measuring": 0, "measured": 0}
    matkron.forget_wisdom()


def test_modes_are_checked():
    with pytest.raises(ValueError, match="mode must be one of 'estimate', 'measure'; got "
                                         "'patient'"):
        matkron.set_planner("patient")
    with pytest.raises(ValueError, match="mode must be one of 'estimate', 'measure'; got "
                                         "'exhaustive'"):
        with matkron.planner("exhaustive"):
            pass
    assert matkron.get_planner() == "measure"


def test_threads_share_a_measurement(rng, measure_all):
    factors = [random_array(rng, (16, 12), np.complex128) for _ in range(3)]
    x = random_array(rng, (12**3, 2), np.complex128)
    reference, bound = product_oracle(factors, x)
    errors = []

    def work():
        try:
            for _ in range(CALLS):
                assert_product(matkron.kron_matvec(factors, x), factors, x, np.complex128,
                               reference=reference, bound=bound)
        except AssertionError as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert _stats()["measuring"] == 0


# -- wisdom ------------------------------------------------------------------------------


def _measured_wisdom(rng, spec=((8, 9), (7, 6), (5, 5)), m=2):
    factors = [random_array(rng, s, np.float64) for s in spec]
    x = random_array(rng, (int(np.prod([q for _, q in spec])), m), np.float64)
    for _ in range(2 + 2 * 6):  # an estimate, then at most 6 candidates timed twice
        matkron.kron_matvec(factors, x)
    assert _stats()["measured"] == 1, _stats()
    return matkron.export_wisdom()


NEW_PROCESS = """
import json, sys
import numpy as np
import matkron
from matkron import _kron_cy, _kron_plan_cy
wisdom = sys.stdin.read()
entry = json.loads(wisdom)["plans"][0]
# The thread count is part of a plan's key; this process may have been given other CPUs
# than the test's (its affinity is inherited), so take the count the plan was measured at.
matkron.set_num_threads(entry["threads"])
loaded = matkron.import_wisdom(wisdom)
stats = _kron_plan_cy._planner_stats()
rng = np.random.default_rng(1)
factors = [rng.standard_normal(f[:2]) for f in entry["factors"]]
x = rng.standard_normal((int(np.prod([f[1] for f in entry["factors"]])), entry["columns"]))
names = ("normal", "rotate-front", "rotate-back")
order, variants, c_ordered, by_column = _kron_cy.kron_plan(tuple(factors), x)
used = (list(order) == entry["order"] and [names.index(v) for v in variants] == entry["variants"]
        and by_column == entry["by_column"])
dense = factors[0]
for f in factors[1:]:
    dense = np.kron(dense, f)
ok = all(np.allclose(matkron.kron_matvec(factors, x), dense @ x) for _ in range(15))
again = json.loads(matkron.export_wisdom())["plans"] == json.loads(wisdom)["plans"]
print(json.dumps({"loaded": loaded, "stats": stats, "used": used, "ok": ok, "again": again}))
"""


def test_wisdom_loads_in_a_new_process(rng, measure_all):
    wisdom = _measured_wisdom(rng)
    matkron.forget_wisdom()
    assert json.loads(matkron.export_wisdom())["plans"] == []
    run = subprocess.run(
        [sys.executable, "-c", NEW_PROCESS],
        input=wisdom,
        text=True,
        capture_output=True,
        timeout=120,
        check=True,
    )
    found = json.loads(run.stdout)
    assert found["loaded"] == 1
    assert found["stats"]["measured"] == 1
    assert found["used"], "the loaded plan is what the product runs"
    assert found["ok"]
    assert found["again"], "the loaded plan is kept as measured, and not measured again"


def test_wisdom_from_another_machine_is_ignored(rng, measure_all):
    data = json.loads(_measured_wisdom(rng))
    matkron.forget_wisdom()
    data["machine"]["blas_kernel"] = "Prescott"
    with pytest.warns(UserWarning, match="another machine or library.*blas_kernel"):
        assert matkron.import_wisdom(json.dumps(data)) == 0
    assert _stats()["measured"] == 0


def test_plan_key_counts_threads_capped_at_the_cores(rng, measure_all):
    # More threads than cores run as many threads as cores: a plan measured while asking
    # for 64 is keyed (and saved) with the cores this process may use.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    with matkron.threads(64):
        entry = json.loads(_measured_wisdom(rng))["plans"][0]
    if cores is not None:
        assert entry["threads"] == min(64, cores)
    assert entry["threads"] <= (os.cpu_count() or 1)


def test_wisdom_saved_with_more_threads_than_cores(rng, measure_all):
    # An entry saved while asking for more threads than the cores (before keys were
    # capped) ran on the cores: it loads as the cores' plan.
    data = json.loads(_measured_wisdom(rng))
    matkron.forget_wisdom()
    data["plans"][0]["threads"] = 64
    assert matkron.import_wisdom(json.dumps(data)) == 1
    entry = json.loads(matkron.export_wisdom())["plans"][0]
    if hasattr(os, "sched_getaffinity"):
        assert entry["threads"] == min(64, len(os.sched_getaffinity(0)))
    assert entry["threads"] <= (os.cpu_count() or 1)


def test_wisdom_round_trip_in_process(rng, measure_all):
    wisdom = _measured_wisdom(rng)
    matkron.forget_wisdom()
    assert matkron.import_wisdom(wisdom) == 1
    assert json.loads(matkron.export_wisdom())["plans"] == json.loads(wisdom)["plans"]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: "not json", "not JSON"),
        (lambda d: json.dumps([1, 2]), "not matkron wisdom"),
        (lambda d: json.dumps({**d, "version": 99}), "format version 99"),
        (lambda d: json.dumps({**d, "plans": {}}), "list of objects"),
        (lambda d: json.dumps({**d, "machine": None}), "machine"),
        (lambda d: json.dumps({**d, "plans": [{**d["plans"][0], "dtype": "int8"}]}), "dtype"),
        (lambda d: json.dumps({**d, "plans": [{**d["plans"][0], "columns": "2"}]}), "'columns'"),
        (
            lambda d: json.dumps({**d, "plans": [{**d["plans"][0], "factors": [[0, 3, False]]}]}),
            "factor 0",
        ),
        (
            lambda d: json.dumps(
                {**d, "plans": [{k: v for k, v in d["plans"][0].items() if k != "order"}]}
            ),
            "missing field 'order'",
        ),
        (
            lambda d: json.dumps({**d, "plans": [{**d["plans"][0], "variants": [7, 0, 0]}]}),
            "'variants'",
        ),
        (lambda d: json.dumps({**d, "plans": [{**d["plans"][0], "rows": 5}]}), "'rows'"),
        (lambda d: json.dumps({**d, "plans": [{**d["plans"][0], "threads": 0}]}), "'threads'"),
        (lambda d: json.dumps({**d, "plans": [{**d["plans"][0], "columns": 2**70}]}),
         "'columns' must be an integer of at most"),
        (lambda d: json.dumps({**d, "plans": [{**d["plans"][0], "flags": -(2**40)}]}),
         "'flags' must be an integer of at most"),
        (lambda d: "[" * 100000 + "]" * 100000, "nests too deeply"),
    ],
    ids=[
        "text",
        "list",
        "version",
        "plans",
        "machine",
        "dtype",
        "columns",
        "factor",
        "missing",
        "variant-range",
        "rows_out",
        "threads",
        "columns-huge",
        "flags-huge",
        "deep",
    ],
)
def test_malformed_wisdom_raises(change, message, rng, measure_all):
    data = json.loads(_measured_wisdom(rng))
    matkron.forget_wisdom()
    with pytest.raises(ValueError, match=message):
        matkron.import_wisdom(change(data))
    assert _stats()["measured"] == 0


def test_altered_plans_are_refused(rng, measure_all):
    # Every variant sequence is offered as wisdom: the loader takes only plans the
    # planner makes for the key, and each one taken computes the product exactly.
    spec = ((8, 9), (7, 6), (5, 5))
    data = json.loads(_measured_wisdom(rng, spec, m=2))
    entry = data["plans"][0]
    factors = [random_array(rng, s, np.float64) for s in spec]
    x = random_array(rng, (9 * 6 * 5, 2), np.float64)
    refused = 0
    for variants in np.ndindex(3, 3, 3):
        for x_c_kind in (False, True):
            matkron.forget_wisdom()
            tampered = {**entry, "variants": list(map(int, variants)), "x_c_kind": x_c_kind}
            text = json.dumps({**data, "plans": [tampered]})
            if tampered == entry:
                assert matkron.import_wisdom(text) == 1
                continue
            with warnings.catch_warnings(record=True) as record:
                warnings.simplefilter("always")
                loaded = matkron.import_wisdom(text)
            if loaded == 0:
                refused += 1
                assert "not loaded" in str(record[0].message)
                assert _stats()["measured"] == 0
            else:
                for _ in range(2):
                    assert_product(matkron.kron_matvec(factors, x), factors, x, np.float64)
    assert refused > 0
    # Duplicated factors, a step left out, own steps without a kernel (the entry's kernel
    # null: on a CPU with an own kernel, a key no product here has), other layout flags, a
    # claim the rebuilt plan contradicts: refused.
    for change in (
        {"order": [0, 0, 1]},
        {"order": [2, 1]},
        {"own": [True, False, False], "kernel": None},
        {"flags": entry["flags"] ^ 1},
        {"out_direct": not entry["out_direct"]},
    ):
        matkron.forget_wisdom()
        tampered = {**entry, **change}
        if "order" in change and len(change["order"]) != len(entry["variants"]):
            tampered["variants"] = entry["variants"][: len(change["order"])]
            tampered["own"] = entry["own"][: len(change["order"])]
        with pytest.warns(UserWarning, match="not loaded"):
            assert matkron.import_wisdom(json.dumps({**data, "plans": [tampered]})) == 0


def test_plans_are_kept_per_thread_count(rng, measure_all):
    # A plan measured with one thread count says nothing about another: each count is a
    # key of its own, and wisdom names the count.
    with matkron.threads(1):
        wisdom = json.loads(_measured_wisdom(rng))
    assert [entry["threads"] for entry in wisdom["plans"]] == [1]
    before = _stats()
    spec = ((8, 9), (7, 6), (5, 5))
    factors = [random_array(rng, s, np.float64) for s in spec]
    x = random_array(rng, (9 * 6 * 5, 2), np.float64)
    with matkron.threads(2):
        matkron.kron_matvec(factors, x)
    after = _stats()
    assert after["measured"] == before["measured"] == 1
    assert sum(after.values()) == sum(before.values()) + 1


def test_switching_the_own_kernel_keeps_measured_plans(rng, measure_all):
    # The kernel is part of a plan's key: a BLAS-only product in between (as the multi
    # suite's "kv dgemm" column runs) neither drops the measured plans nor restarts their
    # measuring; pinning variants does drop them (those plans share the free plans' keys).
    _measured_wisdom(rng)
    spec = ((8, 9), (7, 6), (5, 5))
    factors = [random_array(rng, s, np.float64) for s in spec]
    x = random_array(rng, (9 * 6 * 5, 2), np.float64)
    try:
        _kron_cy._set_planner(None, own_kernel=False)
        assert_product(matkron.kron_matvec(factors, x), factors, x, np.dtype("float64"))
    finally:
        _kron_cy._set_planner(None, own_kernel=True)
    assert _stats()["measured"] == 1, _stats()
    _kron_cy._set_planner(["normal"])
    _kron_cy._set_planner(None)
    assert _stats()["measured"] == 0, _stats()


def test_abandoned_measurements_do_not_stop_measuring(rng, measure_all):
    # More keys left half measured than there are sessions (16): once they have gone
    # unused for a while, a new key takes a session over and is measured.
    spec = ((5, 6), (4, 3))
    for p in range(3, 3 + 20):
        factors = [random_array(rng, (p, 6), np.float64), random_array(rng, (4, 3), np.float64)]
        x = random_array(rng, (18, 2), np.float64)
        for _ in range(2):
            matkron.kron_matvec(factors, x)
    assert _stats()["measuring"] == 16
    factors = make_factors(rng, spec, np.float64)
    x = random_array(rng, (18, 3), np.float64)
    for _ in range(100):
        assert_product(matkron.kron_matvec(factors, x), factors, x, np.dtype("float64"))
    assert _stats()["measured"] >= 1
    assert _stats()["measuring"] <= 16


def test_new_result_order_is_the_measured_plans(rng, measure_all):
    # A new 2-D result is in the order of the plan that runs: the estimate's on the first
    # call, the measured plan's once the key is measured, and candidates of both orders
    # are timed (the cost model's choice of order is what it knows least).
    both_orders = 0
    for spec in [((6, 5), (7, 4)), ((3, 4), (5, 2), (4, 4))]:
        factors = make_factors(rng, spec, np.float64)
        for layout in ("C", "F"):
            matkron.forget_wisdom()
            x = with_layout(random_array(rng, (columns(spec), 5), np.float64), layout)
            reference, bound = product_oracle(factors, x)  # np.kron's dense matrix
            estimate_c = _kron_cy.kron_plan(tuple(factors), x)[2]
            y = matkron.kron_matvec(factors, x)
            assert y.flags.c_contiguous == estimate_c
            while True:  # every candidate's result, in its order, is the product
                assert_product(y, factors, x, np.float64, reference=reference, bound=bound)
                if _stats()["measured"]:
                    break
                y = matkron.kron_matvec(factors, x)
            candidates, chosen = _kron_plan_cy._last_measurement()
            both_orders += {c["out_c_kind"] for c in candidates} == {True, False}
            (entry,) = json.loads(matkron.export_wisdom())["plans"]
            for candidate in candidates:
                # Every candidate, of either order, is a plan wisdom can hold.
                fields = {name: candidate[name] for name in entry if name in candidate}
                assert _kron_plan_cy.load_wisdom_entry({**entry, **fields}, False)
            for _ in range(3):
                y = matkron.kron_matvec(factors, x)
                assert y.flags.c_contiguous == candidates[chosen]["out_c_kind"]
                assert y.flags.c_contiguous or y.flags.f_contiguous
                assert_product(y, factors, x, np.float64, reference=reference, bound=bound)
    assert both_orders == 4
