"""The declared table of probe kernels: what each moves and computes per element.

Every figure a probe reports is derived from this table, so the byte counting can be read (and
tested) in one place. Bytes follow STREAM: each array read or written once per element, no
write-allocate traffic counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class BandwidthKernel:
    """A STREAM-style kernel over arrays of n elements."""

    name: str
    formula: str
    arrays_read: int
    arrays_written: int
    flops_per_element: int

    @property
    def arrays(self) -> int:
        """Distinct arrays resident while the kernel runs (the working set)."""
        return self.arrays_read + self.arrays_written

    def bytes_moved(self, elements: int, itemsize: int) -> int:
        return (self.arrays_read + self.arrays_written) * elements * itemsize

    def flops(self, elements: int) -> int:
        return self.flops_per_element * elements


BANDWIDTH_KERNELS: Final = {
    k.name: k
    for k in (
        BandwidthKernel("copy", "c = a", arrays_read=1, arrays_written=1, flops_per_element=0),
        BandwidthKernel("scale", "b = s·c", arrays_read=1, arrays_written=1, flops_per_element=1),
        BandwidthKernel("add", "c = a + b", arrays_read=2, arrays_written=1, flops_per_element=1),
        BandwidthKernel(
            "triad", "a = b + s·c", arrays_read=2, arrays_written=1, flops_per_element=2
        ),
        BandwidthKernel("read", "sum(a·b)", arrays_read=2, arrays_written=0, flops_per_element=2),
    )
}


@dataclass(frozen=True)
class TransferKernel:
    """A copy across a link: host<->device, or device to device.

    Bytes are counted once, as they cross the link (not once read and once written, as STREAM
    would count a copy within one memory): a link's figure is what it carries.
    """

    name: str
    formula: str

    def bytes_moved(self, elements: int, itemsize: int, devices: int = 1) -> int:
        """``elements`` per device, each device sending its array once."""
        return elements * itemsize * devices


TRANSFER_KERNELS: Final = {
    k.name: k
    for k in (
        TransferKernel("host-to-device", "device ← host array"),
        TransferKernel("device-to-host", "host ← device array"),
        TransferKernel("device-to-device", "ring ppermute: device i+1 ← device i"),
    )
}


@dataclass(frozen=True)
class MatmulKernel:
    """C = A·B with square n×n operands."""

    name: str = "matmul"

    def flops(self, n: int) -> int:
        return 2 * n**3

    def bytes_moved(self, n: int, in_itemsize: int, out_itemsize: int) -> int:
        """Compulsory traffic: A and B read once, C written once."""
        return 2 * n * n * in_itemsize + n * n * out_itemsize


MATMUL: Final = MatmulKernel()
