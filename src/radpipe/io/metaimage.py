"""MetaImage (``.mha``, ``.mhd`` + raw) through SimpleITK, which stores LPS like radpipe."""

from __future__ import annotations

from pathlib import Path

from radpipe.errors import FormatError, ReadError
from radpipe.io.atomic import atomic_path
from radpipe.volume import Volume, VolumeMeta


def read_metaimage(path: str | Path) -> Volume:
    """Read a 3-D MetaImage (a vector pixel type becomes the trailing channel axis).

    Raises
    ------
    ReadError
        If SimpleITK cannot read the file or it is not 3-D.
    """
    import numpy as np
    import SimpleITK as sitk

    name = str(path)
    try:
        image = sitk.ReadImage(name)
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown error"
        raise ReadError(f"{name}: cannot read as MetaImage ({first_line})") from None
    if image.GetDimension() != 3:
        raise ReadError(f"{name}: a {image.GetDimension()}-D MetaImage; radpipe reads 3-D images")
    meta = VolumeMeta(source_format="MetaImage", source_files=(name,))
    if image.GetNumberOfComponentsPerPixel() == 1:
        return Volume.from_sitk(image, meta=meta)
    array = sitk.GetArrayFromImage(image)
    geometry_only = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    geometry_only.CopyInformation(image)
    affine = Volume.from_sitk(geometry_only).affine
    return Volume(np.ascontiguousarray(array), affine, meta=meta.replace(extra_axis="channel"))


def read_geometry(path: str | Path) -> Volume:
    """The grid of a MetaImage from its header alone: a Volume of zero-stride zeros.

    Raises
    ------
    ReadError
        If the header cannot be read or the image is not 3-D.
    """
    import numpy as np
    import SimpleITK as sitk

    name = str(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(name)
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise ReadError(f"{name}: cannot read the MetaImage header") from None
    if reader.GetDimension() != 3:
        raise ReadError(f"{name}: a {reader.GetDimension()}-D MetaImage; radpipe reads 3-D images")
    geometry_only = sitk.Image([1, 1, 1], sitk.sitkUInt8)
    geometry_only.SetSpacing(reader.GetSpacing())
    geometry_only.SetOrigin(reader.GetOrigin())
    geometry_only.SetDirection(reader.GetDirection())
    affine = Volume.from_sitk(geometry_only).affine
    shape = tuple(int(n) for n in reader.GetSize())[::-1]
    return Volume(np.broadcast_to(np.zeros((), np.uint8), shape), affine)


def write_metaimage(volume: Volume, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``volume`` as one ``.mha`` file (compressed). Sheared affines are refused.

    Raises
    ------
    FormatError
        If the name does not end in ``.mha`` (a ``.mhd`` needs a second file), or the affine is
        sheared (MetaImage stores orthogonal directions only).
    """
    import SimpleITK as sitk

    from radpipe import geometry

    target = Path(path)
    if not target.name.lower().endswith(".mha"):
        raise FormatError(f"{target}: radpipe writes MetaImage as one .mha file")
    if geometry.shear_angle_deg(volume.affine) > 0.01:
        raise FormatError(
            f"{target}: MetaImage cannot store a sheared (gantry-tilted) grid; load with "
            "--resample-tilt or write NIfTI"
        )
    image = volume.to_sitk()
    with atomic_path(target, overwrite=overwrite) as temporary:
        sitk.WriteImage(image, str(temporary), useCompression=True)
    return target
