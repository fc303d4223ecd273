"""DICOM series (one file per slice) to and from :class:`~mrilearn.io.volume.Volume`.

Geometry (DICOM PS3.3 C.7.6.2.1.1): the centre of the pixel in column ``i`` and row ``j`` of
a slice is ``IPP + i * dc * r + j * dr * c`` in patient LPS mm, where ``r = IOP[:3]`` (the
direction along a row, increasing column), ``c = IOP[3:]`` (down a column, increasing row)
and ``PixelSpacing = [dr, dc]`` (row spacing, column spacing). The array returned here has
axes (X = columns, Y = rows, Z = slices sorted along the normal ``r x c``), like nibabel, so

    affine_LPS = [[r * dc, c * dr, step, IPP_0], [0, 0, 0, 1]]

with ``step = (IPP_last - IPP_0) / (n - 1)``, and the NIfTI (RAS+) affine is that with its
first two rows negated. Writing inverts exactly this mapping.
"""

from mrilearn.io.dicom.read import read_dicom_series
from mrilearn.io.dicom.write import write_dicom_series

__all__ = ["read_dicom_series", "write_dicom_series"]
