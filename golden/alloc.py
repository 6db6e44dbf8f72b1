"""Large output buffers of the golden integer models, backed by transparent huge pages.

A fresh ``torch.empty`` of tens of MiB costs little until it is written; then the kernel
faults it in one 4 KiB page at a time, and at the golden LIF's sizes (two int64 (..., T, N)
outputs, 16 bytes per neuron-step) that fault-in was most of ``lif_run``'s time. ``empty``
asks the kernel to back a large buffer with 2 MiB pages (``madvise(MADV_HUGEPAGE)``), so it
is faulted in 512 times less often: what torch itself does with ``THP_MEM_ALLOC_ENABLE=1``
(``c10/core/alloc_cpu.cpp``), applied only to the buffers the golden models fill.

Only the memory's backing changes; the tensor (shape, dtype, strides, storage size) is the
one ``torch.empty`` returns and its values are whatever the caller writes, so results are
unchanged bit for bit. The advice is a no-op off Linux, where the kernel's THP mode is
``never``, or when ``SPIKEFORGE_HUGEPAGES=0`` (or ``golden.alloc.HUGEPAGES = False``);
a failing ``madvise`` is ignored.
"""

from __future__ import annotations

import ctypes
import os
import sys

import torch

#: whether ``empty`` advises huge pages (env ``SPIKEFORGE_HUGEPAGES=0`` turns it off)
HUGEPAGES = os.environ.get("SPIKEFORGE_HUGEPAGES", "1") != "0"

#: buffers smaller than this are left alone (an unaligned buffer needs > 2 MiB to hold one huge page)
MIN_BYTES = 4 << 20

_MADV_HUGEPAGE = 14  # linux/mman.h
_PAGE = 4096
_madvise = None


def _libc_madvise():
    global _madvise
    if _madvise is None:
        _madvise = False
        if sys.platform.startswith("linux"):
            try:
                fn = ctypes.CDLL(None, use_errno=True).madvise
                fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
                fn.restype = ctypes.c_int
                _madvise = fn
            except (OSError, AttributeError):
                pass
    return _madvise


def advise_hugepages(t: torch.Tensor) -> torch.Tensor:
    """Advise huge pages for the whole pages inside ``t``'s (CPU, contiguous) memory; returns ``t``.

    Call it before the buffer is first written: pages already faulted in stay 4 KiB.
    """
    nbytes = t.numel() * t.element_size()
    if not HUGEPAGES or nbytes < MIN_BYTES or t.device.type != "cpu" or not t.is_contiguous():
        return t
    madvise = _libc_madvise()
    if madvise:
        start = (t.data_ptr() + _PAGE - 1) & ~(_PAGE - 1)
        end = (t.data_ptr() + nbytes) & ~(_PAGE - 1)
        if end > start:
            madvise(start, end - start, _MADV_HUGEPAGE)
    return t


def empty(shape, dtype: torch.dtype) -> torch.Tensor:
    """``torch.empty(shape, dtype=dtype)`` on the CPU, huge-page backed when large (see above)."""
    return advise_hugepages(torch.empty(shape, dtype=dtype))
