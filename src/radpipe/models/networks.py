"""The segmentation networks radpipe trains (MONAI's U-Net in 2-D or 3-D), built from a model
card's ``network`` entry, and the choice of device."""

from __future__ import annotations

from typing import Any

from radpipe._optional import import_optional
from radpipe.errors import ModelError


def default_network(dimensions: int, *, in_channels: int, out_channels: int) -> dict[str, Any]:
    """The ``network`` entry of a new card: a residual U-Net sized for CPU training, with
    instance normalisation (batch statistics of a few slices swing too much to validate on)."""
    return {
        "class": "monai.networks.nets.UNet",
        "spatial_dims": dimensions,
        "in_channels": in_channels,
        "out_channels": out_channels,
        # four halvings: a 2-D slice's receptive field spans ~200 pixels, enough to tell a
        # structure by what surrounds it (the left ventricle by its myocardial ring)
        "channels": [16, 32, 64, 128, 256] if dimensions == 2 else [16, 32, 64, 128],
        "strides": [2, 2, 2, 2] if dimensions == 2 else [2, 2, 2],
        "num_res_units": 2,
        "norm": "instance",
    }


def build_network(network: dict[str, Any]) -> Any:
    """The ``torch.nn.Module`` a card describes.

    Raises
    ------
    ModelError
        For an architecture this radpipe does not know.
    """
    import_optional("torch", extra="ml")
    nets = import_optional("monai.networks.nets", extra="ml")
    options = {k: v for k, v in network.items() if k != "class"}
    if network.get("class") != "monai.networks.nets.UNet":
        raise ModelError(f"unknown network {network.get('class')!r}; this radpipe builds UNet")
    try:
        return nets.UNet(**options)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"the card's network cannot be built ({exc})") from None


def choose_device(device: str = "auto") -> Any:
    """``auto`` (CUDA when present, else CPU), ``cpu`` or ``cuda``.

    Raises
    ------
    ModelError
        For ``cuda`` on a machine without a CUDA device, or an unknown name.
    """
    torch = import_optional("torch", extra="ml")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda: no CUDA device here; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise ModelError(f"--device must be auto, cpu or cuda, got {device!r}")
    return torch.device(device)
