"""Any directory of images, searched recursively: the way in for a dataset genlab has no module for."""

from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from genlab.data.base import ImageDataModule

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


class ImageFiles(Dataset):
    """Image files under ``root`` (recursive, sorted for a stable order), each with label -1."""

    def __init__(self, root: Path, transform):
        if not root.is_dir():
            raise FileNotFoundError(
                f"data=folder: data.root={root} is not a directory. Pass data.root=DIR with images in it "
                f"(searched recursively for {', '.join(IMAGE_EXTENSIONS)})."
            )
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not self.files:
            raise FileNotFoundError(
                f"data=folder: no images under data.root={root} (searched recursively for "
                f"{', '.join(IMAGE_EXTENSIONS)}). Point data.root at the folder that holds your images."
            )
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.files[index]
        try:
            with Image.open(path) as image:
                image.load()
                return self.transform(image), -1
        except (UnidentifiedImageError, OSError) as err:
            raise OSError(
                f"data=folder: cannot decode image {path} ({err}). Delete or re-encode that file; "
                f"nothing was trained on it."
            ) from err


class ImageFolderDataModule(ImageDataModule):
    """Unlabelled images from ``root``; ``channels`` picks grayscale (1) or RGB (3), then resize + center crop."""

    def __init__(self, root: str | Path, channels: int = 3, image_size: int = 64, num_classes: int = 0, **kwargs):
        super().__init__(channels, image_size, num_classes, **kwargs)
        self.root = Path(root).expanduser()

    def build_datasets(self) -> tuple[Dataset, Dataset]:
        return self.random_split(ImageFiles(self.root, self.image_transform()))
