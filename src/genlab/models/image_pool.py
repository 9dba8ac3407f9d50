"""The history of generated images CycleGAN's discriminators train on (Shrivastava et al. 2017, Sec. 2.3; Zhu et
al. 2017, Sec. 4): updating D on older fakes as well as the newest damps the oscillation between the players.

The official ``ImagePool`` (junyanz/pytorch-CycleGAN-and-pix2pix, ``util/image_pool.py``), image by image: until
the pool holds ``size`` images each new fake is stored and returned; after that, with probability 1/2 a random
stored image is returned and the new fake takes its place, otherwise the new fake is returned. Random draws come
from the generator passed in (the model's own ``rng``, which is checkpointed), and :meth:`ImagePool.state` is one
tensor, so the pool resumes exactly and checkpoints load with ``torch.load(weights_only=True)``.
"""

import torch
from torch import Tensor


class ImagePool:
    def __init__(self, size: int = 50):
        if size < 0:
            raise ValueError(f"the image pool size must be >= 0 (0: no pool, D sees only the newest fakes), got {size}.")
        self.size = size
        self.images: list[Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """The batch D trains on for these new fakes (N, C, H, W): as many images, each new or from the history."""
        if self.size == 0:
            return images
        images = images.detach()
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand((), generator=generator)) < 0.5:
                slot = int(torch.randint(self.size, (), generator=generator))
                out.append(self.images[slot].to(image.device))
                self.images[slot] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state(self) -> Tensor:
        """The stored images as one (len, C, H, W) tensor on the CPU (an empty (0,) tensor for an empty pool)."""
        return torch.stack(self.images).cpu() if self.images else torch.empty(0)

    def load_state(self, images: Tensor) -> None:
        if len(images) > self.size:
            raise ValueError(
                f"the checkpoint's image pool holds {len(images)} images but this model's pool_size is {self.size}; "
                f"resume with model.pool_size={len(images)} (the setting of the run that wrote it)."
            )
        self.images = list(images.unbind(0)) if images.numel() else []
