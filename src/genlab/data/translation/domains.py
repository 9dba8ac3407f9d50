"""Multi-domain data for StarGAN-style translation: images with their domain, no source.

``Batch(images=the image, labels=its domain, source=None)``: ``labels`` are domain indices (N,) int64 for one
folder per domain (StarGAN's RaFD layout), or attribute vectors (N, A) float 0/1 for CelebA, as StarGAN's solver
uses them (``label_org`` of ``data_loader.py``; BCE domain classification for CelebA, CE for RaFD). A model reads
which one from ``labels_are_attributes`` and the names from ``domain_names``; ``num_classes`` is the number of
domains (the length of the attribute vector for CelebA).

Layouts:

* ``data=domains_folder``: ``ROOT/<domain>/*.jpg`` (a seeded ``val_fraction`` split), or StarGAN's
  ``ROOT/train/<domain>/`` with ``ROOT/test/<domain>/`` (or ``val/``) held out. Domains are the sorted folder names
  (torchvision ``ImageFolder``'s class order).
* ``data=celeba_domains``: ``ROOT/celeba/img_align_celeba/*.jpg`` (torchvision's layout) or StarGAN's
  ``ROOT/celeba/images/*.jpg``, with ``list_attr_celeba.txt``. StarGAN's split (``split=stargan``): shuffle the
  attribute lines with ``random.seed(1234)`` and hold out the first 1999 (``(i+1) < 2000`` in its
  ``CelebA.preprocess``); ``split=official``: CelebA's ``list_eval_partition.txt`` (0 train, 1 held out).
  Transform as StarGAN: flip (training), ``CenterCrop(178)``, resize to ``image_size``.
"""

import random
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from genlab.data.folder import IMAGE_EXTENSIONS
from genlab.data.translation.images import (
    NoItems,
    SharedTransform,
    TranslationDataModule,
    TranslationItems,
    first_existing,
    image_files,
    mode_for,
)

STARGAN_ATTRIBUTES = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")


class DomainImages(TranslationItems):
    """Image files with one label each -> ``(image, label)``: an int domain index, or a float attribute vector."""

    def __init__(self, files: list[Path], labels: list[int] | Tensor, transform: SharedTransform, channels: int, where: str):
        if len(files) != len(labels):
            raise ValueError(f"{len(files)} files but {len(labels)} labels")
        self.files = files
        self.labels = labels
        self.transform = transform
        self.mode = mode_for(channels)
        self.where = where
        if not isinstance(labels, Tensor):
            self.targets = list(labels)  # genlab.data.labelled.item_labels reads labels without decoding images

    def __len__(self) -> int:
        return len(self.files)

    def source_file(self, index: int) -> Path:
        return self.files[index]

    def item(self, index: int, augment: bool) -> tuple[Tensor, int | Tensor]:
        return self.load(self.files[index], self.mode, augment), self.labels[index]


class DomainDataModule(TranslationDataModule):
    """Shared by the multi-domain datamodules: ``domain_names``, ``labels_are_attributes``, the count check."""

    pairing = "domains"
    labels_are_attributes = False

    def __init__(self, root, channels, image_size, num_classes, load_size=None, flip=True, center_crop=None, **kwargs):
        load_size = image_size if load_size is None else load_size  # StarGAN: no random crop
        super().__init__(
            root, channels, image_size, num_classes, load_size=load_size, flip=flip, center_crop=center_crop,
            keep_aspect=True, **kwargs,
        )
        self.domain_names: list[str] = []

    @property
    def source_channels(self) -> int:
        """A multi-domain translator's input is an image of the data itself (what ``eval.py mode=translate`` reads)."""
        return self.channels

    def input_of(self, item: tuple) -> Tensor:
        """Domain items are ``(image, domain)``: the image itself is what a multi-domain translator translates."""
        return item[0]

    def check_domain_count(self, names: list[str], what: str) -> None:
        if len(names) != self.num_classes:
            raise ValueError(
                f"{self.where}: found {len(names)} {what} ({', '.join(names)}) but "
                f"data.num_classes={self.num_classes}; the nets are sized by data.num_classes, so set "
                f"data.num_classes={len(names)}."
            )


class DomainFolderDataModule(DomainDataModule):
    """One folder per domain; ``labels`` = the domain index (sorted folder names, see ``domain_names``)."""

    config_name = "domains_folder"
    expected_layout = (
        "  ROOT/<domain>/*.jpg          one folder per domain (e.g. ROOT/angry, ROOT/happy, ...); held out: a\n"
        "                               seeded data.val_fraction of each run's files\n"
        "  or ROOT/train/<domain>/*.jpg with ROOT/test/<domain>/ (or val/) held out: StarGAN's RaFD layout"
    )
    how_to_get = "with every image of a domain in that domain's folder (searched recursively)"

    def __init__(self, root: str | Path, channels: int = 3, image_size: int = 128, num_classes: int = 8, **kwargs):
        super().__init__(root, channels, image_size, num_classes, **kwargs)

    def domain_folders(self, base: Path) -> list[str]:
        loose = sorted(p.name for p in base.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if loose:
            raise self.layout_error(
                f"{base} holds images outside any domain folder ({', '.join(loose[:3])}{', ...' if len(loose) > 3 else ''})",
                "Each domain is a subfolder; move those images into the folder of their domain.",
            )
        names = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not names:
            raise self.layout_error(f"{base} has no domain folders")
        return names

    def files_and_labels(self, base: Path, names: list[str], required: bool = True) -> tuple[list[Path], list[int]]:
        files, labels = [], []
        for index, name in enumerate(names):
            found = image_files(base / name)
            if not found and required:
                raise self.layout_error(
                    f"domain folder {base / name} holds no images (searched recursively for {', '.join(IMAGE_EXTENSIONS)})",
                    "An empty domain is refused rather than skipped; remove the folder or fill it.",
                )
            files += found
            labels += [index] * len(found)
        return files, labels

    def build_datasets(self) -> tuple[Dataset, Dataset]:
        self.require_root()
        reader = lambda files, labels: DomainImages(files, labels, self.transform, self.channels, self.where)  # noqa: E731
        if (self.root / "train").is_dir():
            names = self.domain_folders(self.root / "train")
            self.check_domain_count(names, f"domain folders in {self.root / 'train'}")
            self.domain_names = names
            train = self.files_and_labels(self.root / "train", names)
            held_out = first_existing(self.root, ("test", "val"))
            if held_out is None:
                return reader(*train), NoItems()
            unknown = sorted(set(self.domain_folders(self.root / held_out)) - set(names))
            if unknown:
                raise self.layout_error(
                    f"{held_out}/ has domain folders that train/ lacks ({', '.join(unknown)})",
                    "Held-out domains must be training domains: rename or remove those folders.",
                )
            return reader(*train), reader(*self.files_and_labels(self.root / held_out, names, required=False))
        names = self.domain_folders(self.root)
        self.check_domain_count(names, f"domain folders in {self.root}")
        self.domain_names = names
        files, labels = self.files_and_labels(self.root, names)
        n_val = int(round(len(files) * self.val_fraction))
        order = torch.randperm(len(files), generator=torch.Generator().manual_seed(self.split_seed)).tolist()
        pick = lambda idx: ([files[i] for i in idx], [labels[i] for i in idx])  # noqa: E731
        return reader(*pick(order[n_val:])), (reader(*pick(order[:n_val])) if n_val else NoItems())


def read_attribute_file(path: Path, where: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """``list_attr_celeba.txt``: line 1 the image count, line 2 the 40 attribute names, then
    ``000001.jpg -1  1  1 ...`` (values 1 / -1, separated by one or two spaces)."""
    lines = [line.rstrip() for line in path.read_text().splitlines()]
    if len(lines) < 2:
        raise ValueError(f"{where}: {path} is not a CelebA attribute file (it needs a count line and a names line).")
    names = lines[1].split()
    rows = []
    for number, line in enumerate(lines[2:], start=3):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != len(names) + 1 or any(v not in ("1", "-1") for v in fields[1:]):
            raise ValueError(
                f"{where}: {path} line {number} is not 'FILE' followed by {len(names)} values of 1 or -1: {line[:80]!r}."
            )
        rows.append((fields[0], fields[1:]))
    return names, rows


class CelebADomainsDataModule(DomainDataModule):
    """CelebA with ``attributes`` as domains; ``labels`` = the attribute vector, float 0/1 (StarGAN's labels)."""

    config_name = "celeba_domains"
    labels_are_attributes = True
    expected_layout = (
        "  ROOT/celeba/img_align_celeba/000001.jpg ... (torchvision's layout)\n"
        "  or ROOT/celeba/images/000001.jpg ... (StarGAN's)\n"
        "  ROOT/celeba/list_attr_celeba.txt (line 1 the count, line 2 the 40 names, then '000001.jpg -1  1 ...')\n"
        "  ROOT/celeba/list_eval_partition.txt (only for data.split=official)\n"
        "  (data.root may also be the celeba/ folder itself)"
    )
    how_to_get = (
        "e.g. StarGAN's bash download.sh celeba (yunjey/stargan) then data.root=data, or the aligned CelebA files "
        "from the CelebA site (what data=celeba reads)"
    )

    def __init__(
        self,
        root: str | Path,
        attributes: list[str] = STARGAN_ATTRIBUTES,
        split: str = "stargan",
        held_out_count: int = 1999,
        channels: int = 3,
        image_size: int = 128,
        num_classes: int = 5,
        center_crop: int | None = 178,
        **kwargs,
    ):
        super().__init__(root, channels, image_size, num_classes, center_crop=center_crop, **kwargs)
        if split not in ("stargan", "official"):
            raise ValueError(
                "data.split must be 'stargan' (StarGAN's shuffled 1999 held out) or 'official' "
                f"(list_eval_partition.txt), got {split!r}."
            )
        self.attributes = [str(a) for a in attributes]
        self.check_domain_count(self.attributes, "attributes in data.attributes")
        self.domain_names = list(self.attributes)
        self.split = split
        self.held_out_count = int(held_out_count)
        if self.root.name != "celeba" and (self.root / "celeba").is_dir():
            self.root = self.root / "celeba"

    def build_datasets(self) -> tuple[Dataset, Dataset]:
        self.require_root()
        image_dir_name = first_existing(self.root, ("img_align_celeba", "images"))
        if image_dir_name is None:
            raise self.layout_error("no img_align_celeba/ or images/ folder")
        attr_path = self.root / "list_attr_celeba.txt"
        if not attr_path.is_file():
            raise self.layout_error("no list_attr_celeba.txt")
        names, rows = read_attribute_file(attr_path, self.where)
        unknown = [a for a in self.attributes if a not in names]
        if unknown:
            raise ValueError(f"{self.where}: {attr_path} has no attribute {unknown}; choose from: {' '.join(names)}.")
        columns = [names.index(a) for a in self.attributes]
        image_dir = self.root / image_dir_name
        present = {p.name for p in image_dir.iterdir()}
        missing = [name for name, _ in rows if name not in present]
        if missing:
            raise self.layout_error(
                f"{attr_path.name} lists {len(missing)} images that {image_dir} lacks (first: {missing[0]})",
                "Extract the whole image archive there, or use an attribute file that lists only the images you have.",
            )
        if self.split == "stargan":
            random.Random(1234).shuffle(rows)  # StarGAN: random.seed(1234); random.shuffle(lines)
            held, train = rows[: self.held_out_count], rows[self.held_out_count :]
        else:
            partition_path = self.root / "list_eval_partition.txt"
            if not partition_path.is_file():
                raise self.layout_error(
                    "no list_eval_partition.txt (data.split=official needs it)", "Or set data.split=stargan."
                )
            partition = dict(line.split()[:2] for line in partition_path.read_text().splitlines() if line.strip())
            train = [r for r in rows if partition.get(r[0]) == "0"]
            held = [r for r in rows if partition.get(r[0]) == "1"]
        if not train:
            raise self.layout_error(
                f"the training split is empty ({len(rows)} images, {len(held)} held out)", "Lower data.held_out_count."
            )

        def reader(subset):
            labels = torch.tensor([[float(values[c] == "1") for c in columns] for _, values in subset], dtype=torch.float32)
            files = [image_dir / name for name, _ in subset]
            return DomainImages(files, labels.reshape(len(subset), len(columns)), self.transform, self.channels, self.where)

        return reader(train), (reader(held) if held else NoItems())
