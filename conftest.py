"""Project-wide pytest options.

``--long`` runs the long proofs that CI leaves out (e.g. 64 held-out samples of every model on
the core under Verilator, where CI runs 64 of the spiking MLP and 16 of each WTA model). Tests
marked ``long`` are deselected without it; their figures are reported in the issues' notes.
"""

import pytest


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true", default=False,
                     help="also run the long proofs (tests marked 'long')")


def pytest_configure(config):
    config.addinivalue_line("markers", "long: a long proof, run with --long (CI runs the short tier)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--long"):
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("long") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
