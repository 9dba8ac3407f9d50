"""The frozen ImageNet VGG19 feature maps of SRGAN's perceptual content loss (Ledig et al. 2017, Sec. 2.2.1).

``phi_{i,j}``: the feature map after the j-th convolution (and its ReLU) before the i-th max-pooling of VGG19
(Simonyan & Zisserman 2015). VGG54 (``phi_{5,4}``, the paper's choice for SRGAN) is ``torchvision``'s
``vgg19().features[:36]``; VGG22 (``phi_{2,2}``) is ``features[:9]``.

The weights are torchvision's ``IMAGENET1K_V1`` file, which cannot be downloaded on every machine: pass a local copy
as ``weights=PATH``, or let torchvision download it into the torch.hub cache; every way that fails names the file,
where to get it and the config key.
"""

from pathlib import Path

import torch
from torch import Tensor, nn

VGG19_WEIGHTS_FILE = "vgg19-dcbb9e9d.pth"
VGG19_WEIGHTS_URL = f"https://download.pytorch.org/models/{VGG19_WEIGHTS_FILE}"
#: phi_{i,j} -> number of torchvision ``vgg19().features`` layers up to and including that conv's ReLU
VGG19_LAYERS = {"22": 9, "54": 36}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGWeightsUnavailable(RuntimeError):
    pass


def vgg19_hub_path() -> Path:
    """Where torchvision caches the downloaded weights (and looks first)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_WEIGHTS_FILE


def how_to_get_vgg19_weights() -> str:
    return (
        f"Download {VGG19_WEIGHTS_FILE} (torchvision's VGG19 IMAGENET1K_V1, about 548 MB) from\n  {VGG19_WEIGHTS_URL}\n"
        f"on a machine with internet, copy it over and pass model.content_loss.weights=/path/to/{VGG19_WEIGHTS_FILE} "
        f"(or put it at {vgg19_hub_path()}, the torch.hub cache used automatically). Without those weights, train "
        "with the MSE content loss (the srresnet/srgan presets' default, model/content_loss=mse)."
    )


class VGGFeatures(nn.Module):
    """Images (N, 1 or 3, H, W) in [-1, 1] -> VGG19 feature maps ``phi_{i,j}`` (ImageNet-normalised RGB input;
    grayscale is repeated to three channels). Frozen and always in eval mode."""

    def __init__(self, weights: str | Path | None = None, layer: str = "54"):
        super().__init__()
        if layer not in VGG19_LAYERS:
            raise ValueError(f"VGG feature layer must be one of {sorted(VGG19_LAYERS)} (phi_(i,j) as 'ij'), got {layer!r}.")
        from torchvision.models.vgg import cfgs, make_layers

        self.layer = layer
        self.features = make_layers(cfgs["E"])[: VGG19_LAYERS[layer]]  # VGG19's conv stack, without the classifier
        self.features.load_state_dict(vgg19_feature_weights(weights, VGG19_LAYERS[layer]))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGGFeatures":
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"VGG features need (N, 1 or 3, H, W) images, got {tuple(images.shape)}.")
        rgb = ((images + 1) / 2).expand(-1, 3, -1, -1)
        return self.features((rgb - self.mean) / self.std)


def vgg19_feature_weights(weights: str | Path | None, layers: int) -> dict[str, Tensor]:
    """The ``features.*`` tensors of the first ``layers`` layers from torchvision's VGG19 file: ``weights`` when
    given, else the torch.hub cache, downloading when online. Read with ``weights_only=True``."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"model.content_loss.weights={path}: no such file.\n{how_to_get_vgg19_weights()}")
        state = _read(path)
    else:
        path = vgg19_hub_path()
        try:
            state = torch.hub.load_state_dict_from_url(VGG19_WEIGHTS_URL, progress=False, map_location="cpu", weights_only=True)
        except OSError as err:  # urllib.error.URLError, socket errors, DNS failures: no internet
            raise VGGWeightsUnavailable(
                f"VGG19 weights are not available: no file at {path} and downloading them failed "
                f"({type(err).__name__}: {err}).\n{how_to_get_vgg19_weights()}"
            ) from err
    from torchvision.models.vgg import cfgs, make_layers

    expected = make_layers(cfgs["E"])[:layers].state_dict()
    found = {key.removeprefix("features."): value for key, value in state.items() if key.startswith("features.")}
    missing = [key for key in expected if key not in found or found[key].shape != expected[key].shape]
    if missing:
        raise VGGWeightsUnavailable(
            f"{path} is not torchvision's VGG19 weights file: {len(missing)} of the {len(expected)} conv tensors the "
            f"content loss needs are missing or have other shapes (first: features.{missing[0]}).\n{how_to_get_vgg19_weights()}"
        )
    return {key: found[key] for key in expected}


def _read(path: Path) -> dict[str, Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated download, not a torch file, or pickled objects weights_only refuses
        raise VGGWeightsUnavailable(
            f"{path} cannot be read as a weights file ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}).\n"
            f"{how_to_get_vgg19_weights()}"
        ) from err
    if not isinstance(state, dict):
        raise VGGWeightsUnavailable(f"{path} holds a {type(state).__name__}, not a state dict.\n{how_to_get_vgg19_weights()}")
    return state
