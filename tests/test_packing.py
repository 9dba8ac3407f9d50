"""PacGAN packing (Lin et al. 2018): the discriminator judges m samples concatenated, on any unconditional preset."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

from conftest import compose_config
from genlab.nets import DCGANDiscriminator, MLPDiscriminator, ToyMLPDiscriminator
from genlab.nets.packing import pack_samples


def test_packing_concatenates_consecutive_samples_along_channels():
    x = torch.randn(6, 3, 4, 4)
    packed = pack_samples(x, 2)
    assert packed.shape == (3, 6, 4, 4)
    assert torch.equal(packed[1, :3], x[2]) and torch.equal(packed[1, 3:], x[3])
    points = torch.arange(12.0).view(6, 2)
    assert torch.equal(pack_samples(points, 3), torch.tensor([[0.0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]))


def test_a_short_last_batch_leaves_out_the_same_remainder_for_any_input():
    assert pack_samples(torch.randn(7, 2), 3).shape == (2, 6)
    with pytest.raises(ValueError, match="batch_size"):
        pack_samples(torch.randn(2, 2), 3)


@pytest.mark.parametrize(
    "net, sample",
    [
        (lambda pack: DCGANDiscriminator(1, 16, width=8, pack=pack), torch.randn(8, 1, 16, 16)),
        (lambda pack: MLPDiscriminator(1, 8, hidden=(16,), pack=pack), torch.randn(8, 1, 8, 8)),
        (lambda pack: ToyMLPDiscriminator(2, hidden=(16, 16), pack=pack), torch.randn(8, 2)),
    ],
)
def test_packed_discriminators_give_one_score_per_pack_that_depends_on_every_member(net, sample):
    torch.manual_seed(0)
    d = net(4).eval()
    scores = d(sample)
    assert scores.shape == (2,)
    # the score of a pack reads all its members: changing the last sample of the first pack changes only its score
    changed = sample.clone()
    changed[3] = torch.randn_like(changed[3])
    new = d(changed)
    assert not torch.allclose(new[0], scores[0]) and torch.allclose(new[1], scores[1])
    # a permutation within a pack only reorders the channel blocks the discriminator reads: the same samples
    swapped = sample[[1, 0, 2, 3, 4, 5, 6, 7]]
    blocks = pack_samples(swapped, 4)[0].split(sample.shape[1] if sample.dim() == 4 else 2)
    assert torch.equal(blocks[0], sample[1]) and torch.equal(blocks[1], sample[0])


def test_packing_refuses_class_conditional_discriminators_and_bad_values():
    with pytest.raises(ValueError, match="one label per sample"):
        DCGANDiscriminator(1, 16, num_classes=10, label_mode="projection", pack=2)
    with pytest.raises(ValueError, match="pack is the number of samples"):
        ToyMLPDiscriminator(2, pack=0)


def test_infogan_refuses_a_packed_discriminator(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=infogan", "model.discriminator.pack=2", "model.generator.width=8",
                                    "model.discriminator.width=8", "model.code_head.hidden=8"])
    with pytest.raises(Exception, match="leave model.discriminator.pack at 1"):  # Hydra wraps the ValueError
        instantiate(cfg.model)


def test_pacgan2_trains_on_the_ring_and_every_packed_sample_gets_a_gradient(tmp_path: Path):
    cfg = compose_config(tmp_path, [
        "model=toy_gan", "model.discriminator.pack=2", "data=ring8", "data.num_points=800",
        "model.generator.hidden=[16,16]", "model.discriminator.hidden=[16,16]",
    ])
    model, datamodule = instantiate(cfg.model), instantiate(cfg.data)
    assert model.discriminator.body[0].linear.in_features == 2 * 2  # two 2-D points side by side
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=4, logger=False, callbacks=[], enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(model, datamodule=datamodule)
    logged = trainer.callback_metrics
    assert torch.isfinite(logged["loss/d"]) and torch.isfinite(logged["loss/g"])
    changed = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert any(k.startswith("generator.") for k in changed) and any(k.startswith("discriminator.") for k in changed)
    real = torch.randn(10, 2, requires_grad=True)
    model.discriminator(real).sum().backward()
    assert real.grad.abs().sum(1).gt(0).all()
