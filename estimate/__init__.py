"""Cost estimates of whole models (reserved).

Energy accounting (SOPs, MACs, spikes, firing rates, pJ) lives in ``golden/energy.py``
(``spikeforge energy``, ``spikeforge compare``); cycle counts of each hardware block are
stated as formulas in its component's docstring and checked against simulation in ``tests/``.
"""
