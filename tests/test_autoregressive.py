"""PixelCNN, Gated PixelCNN, Row LSTM and the seed's raster LSTM: causality checked with autograd, the likelihood
against a slow per-pixel reference, sampling and completion, and that a few CPU training steps lower held-out NLL."""

import functools
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from conftest import compose_config, fit_bare
from genlab.coding import PaletteCoding, UniformCoding
from genlab.completion import complete, completion_rows, cover, given_pixel_count
from genlab.models import AutoregressiveModule
from genlab.nets import MaskedConv2d, PixelCNN, RasterLSTM, RowLSTM
from genlab.nets.masked import causal_mask

NETS = {
    "pixelcnn": functools.partial(PixelCNN, hidden=12, blocks=2, gated=False, kernel_size=5),
    "gated_pixelcnn": functools.partial(PixelCNN, hidden=12, blocks=2, gated=True, kernel_size=5),
    "rowlstm": functools.partial(RowLSTM, hidden=12, layers=2),
    "raster_lstm": functools.partial(RasterLSTM, hidden=16),
}


def raster_after(height: int, width: int, i: int, j: int) -> torch.Tensor:
    """(H, W) bool: positions strictly after (i, j) in raster order."""
    order = torch.arange(height * width).view(height, width)
    return order > i * width + j


# -- masked convolutions ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_conv_gradient_is_zero_at_and_after_the_pixel(mask_type: str):
    torch.manual_seed(0)
    conv = MaskedConv2d(2, 4, 5, mask_type)
    x = torch.randn(1, 2, 6, 7, requires_grad=True)
    out = conv(x)
    for i, j in [(0, 0), (2, 3), (5, 6), (3, 0)]:
        (grad,) = torch.autograd.grad(out[0, :, i, j].sum(), x, retain_graph=True)
        position = grad[0].abs().sum(0)  # (H, W)
        assert torch.all(position[raster_after(6, 7, i, j)] == 0), "an input after the pixel reached it"
        if mask_type == "A":
            assert position[i, j] == 0, "mask A must not see the current pixel"
        else:
            assert position[i, j] != 0, "mask B sees the current pixel's features"
        if j > 0:
            assert position[i, j - 1] != 0, "the left neighbour is in the context"
        if i > 0:
            assert position[i - 1, j] != 0, "the pixel above is in the context"


def test_channel_groups_order_r_g_b_inside_a_pixel():
    mask_a = causal_mask(6, 3, (3, 3), "A", groups=3)[:, :, 1, 1]
    mask_b = causal_mask(6, 3, (3, 3), "B", groups=3)[:, :, 1, 1]
    # output feature f belongs to data channel f % 3: R features see nothing of the pixel under mask A
    assert mask_a[[0, 3]].sum() == 0
    assert torch.equal(mask_a[1], torch.tensor([1.0, 0, 0])) and torch.equal(mask_a[2], torch.tensor([1.0, 1, 0]))
    assert torch.equal(mask_b[2], torch.tensor([1.0, 1, 1])) and torch.equal(mask_b[0], torch.tensor([1.0, 0, 0]))


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("channels", [1, 3])
def test_whole_net_is_causal(name: str, channels: int):
    """Logits of channel c at pixel p depend only on pixels before p and, at p, on channels before c."""
    torch.manual_seed(0)
    net = NETS[name](in_channels=channels, channels=channels, levels=4)
    height, width = 6, 5
    x = torch.randn(4, channels, height, width, requires_grad=True)  # 4 inputs: a dead ReLU on one cannot hide a path
    logits = net(x)
    assert logits.shape == (4, 4, channels, height, width)
    independent = name == "raster_lstm"  # its channels are independent given the past
    for i, j in [(0, 0), (0, 4), (3, 2), (5, 4)]:
        for c in range(channels):
            grad = torch.autograd.grad(logits[:, :, c, i, j].sum(), x, retain_graph=True)[0].abs().sum(0)
            assert torch.all(grad[:, raster_after(height, width, i, j)] == 0), "a later pixel reached the logits"
            seen_here = grad[:, i, j] != 0
            assert not seen_here[c:].any(), "the pixel's own channel or a later one reached the logits"
            assert independent or seen_here[:c].all(), "earlier channels of the same pixel are context"
            if (i, j) != (0, 0):
                assert grad[:, :i + 1].sum() > 0 and (j == 0 or grad[:, i, j - 1].sum() > 0), "context must reach the pixel"


# -- likelihood vs a slow reference ------------------------------------------------------------------------------------
def model_for(name: str, coding, image_size: int, num_classes: int = 0) -> AutoregressiveModule:
    torch.manual_seed(0)
    optimizer = functools.partial(torch.optim.Adam, lr=1e-3)
    return AutoregressiveModule(NETS[name], coding, optimizer, image_size, num_classes, conditional=num_classes > 0)


def reference_log_prob(model: AutoregressiveModule, indices: torch.Tensor, labels=None) -> torch.Tensor:
    """Sum over variables in autoregressive order of log p(x_v | x_<v), each from a forward pass in which x_v and
    every later variable are replaced by random values: a slow loop that cannot see the future by construction."""
    generator = torch.Generator().manual_seed(1)
    n, channels, height, width = indices.shape
    total = torch.zeros(n)
    for t in range(height * width):
        i, j = divmod(t, width)
        for c in range(channels):
            corrupted = indices.clone().view(n, channels, height * width)
            corrupted[:, :, t + 1 :] = torch.randint(model.coding.levels, corrupted[:, :, t + 1 :].shape, generator=generator)
            corrupted[:, c:, t] = torch.randint(model.coding.levels, corrupted[:, c:, t].shape, generator=generator)
            logits = model.net(model.coding.embed(corrupted.view_as(indices)), model.check_labels(labels))
            log_probs = torch.log_softmax(logits[:, :, c, i, j], dim=1)
            total += log_probs.gather(1, indices[:, c, i, j, None])[:, 0]
    return total


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("coding", ["uniform_rgb", "palette"])
def test_log_likelihood_equals_slow_per_pixel_reference(name: str, coding: str):
    if coding == "palette":
        pixel_coding = PaletteCoding(5)
        pixel_coding.set_palette(torch.randint(0, 256, (5, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)))
    else:
        pixel_coding = UniformCoding(3, levels=4)
    model = model_for(name, pixel_coding, image_size=4, num_classes=3)
    indices = torch.randint(pixel_coding.levels, (2, pixel_coding.channels, 4, 4), generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([0, 2])
    with torch.no_grad():
        fast = model.log_prob_indices(indices, labels)
        slow = reference_log_prob(model, indices, labels)
        assert torch.allclose(fast, slow, atol=1e-4), (fast, slow)
        assert torch.allclose(model.log_likelihood(pixel_coding.decode(indices), labels), fast)


@pytest.mark.parametrize("name", ["rowlstm", "raster_lstm"])
def test_incremental_sampler_sees_the_same_distributions_as_training(name: str):
    """The recurrent nets sample with carried state; fed the true pixels, their per-pixel logits must be the ones
    the training forward pass computes."""
    model = model_for(name, UniformCoding(3, 4), image_size=5)
    indices = torch.randint(4, (2, 3, 5, 5), generator=torch.Generator().manual_seed(0))
    recorded = []
    flat = indices.view(2, 3, 25)
    position = iter([(t, c) for t in range(25) for c in range(3)])

    def teacher(logits):
        t, c = next(position)
        recorded.append(torch.log_softmax(logits, 1).gather(1, flat[:, c, t, None])[:, 0])
        return flat[:, c, t]

    with torch.no_grad():
        model.net.fill(indices.clone(), 0, model.coding.embed, teacher)
        assert torch.allclose(torch.stack(recorded).sum(0), model.log_prob_indices(indices), atol=1e-4)


# -- sampling and completion -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NETS)
def test_sampling_contract(name: str):
    model = model_for(name, UniformCoding(1, 2), image_size=6)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = model.sample(3, generator=torch.Generator().manual_seed(0))
    b = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert a.shape == (3, 1, 6, 6) and torch.equal(a, b) and not a.requires_grad
    assert set(a.unique().tolist()) <= {-1.0, 1.0}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(2, condition=torch.zeros(2, dtype=torch.long))


def test_conditional_model_needs_and_uses_labels():
    model = model_for("gated_pixelcnn", UniformCoding(1, 2), image_size=4, num_classes=3)
    indices = torch.randint(2, (2, 1, 4, 4), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        zeros, twos = model.log_prob_indices(indices, torch.tensor([0, 0])), model.log_prob_indices(indices, torch.tensor([2, 2]))
    assert not torch.allclose(zeros, twos), "the label must change the likelihood"
    a = model.sample(8, condition=torch.zeros(8, dtype=torch.long), generator=torch.Generator().manual_seed(0))
    b = model.sample(8, condition=torch.full((8,), 2), generator=torch.Generator().manual_seed(0))
    assert a.shape == (8, 1, 4, 4) and not torch.equal(a, b)
    with pytest.raises(ValueError, match="labels"):
        model.log_prob_indices(indices)
    with pytest.raises(ValueError, match="labels"):
        model.log_prob_indices(indices, torch.tensor([-1, -1]))  # unlabelled data


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("fraction", [0.5, 0.25])
def test_completion_keeps_the_given_pixels_exactly(name: str, fraction: float):
    palette = torch.tensor([[255, 255, 255], [0, 0, 0], [200, 30, 40], [10, 220, 90]], dtype=torch.uint8)
    coding = PaletteCoding(4)
    coding.set_palette(palette)
    model = model_for(name, coding, image_size=6)
    originals = coding.decode(torch.randint(4, (3, 1, 6, 6), generator=torch.Generator().manual_seed(0)))
    completed = complete(model, originals, fraction, generator=torch.Generator().manual_seed(1))
    given = given_pixel_count(fraction, 6, 6)
    assert given == {0.5: 18, 0.25: 9}[fraction]
    flat_in, flat_out = originals.flatten(2), completed.flatten(2)
    assert torch.equal(flat_out[:, :, :given], flat_in[:, :, :given])
    assert not torch.equal(flat_out[:, :, given:], flat_in[:, :, given:]), "the rest is sampled, not copied"
    # every completed pixel is a palette colour
    assert torch.equal(coding.decode(coding.encode(completed)), completed)
    rows = completion_rows(model, originals, (0.5, 0.25))
    assert rows.shape == (15, 3, 6, 6)
    assert torch.equal(rows[3:6], cover(originals, 18)) and torch.all(rows[3:6].flatten(2)[:, :, 18:] == 0)


def test_completion_needs_an_autoregressive_model():
    with pytest.raises(TypeError, match="autoregressive"):
        complete(torch.nn.Identity(), torch.zeros(1, 1, 4, 4), 0.5)


# -- configs and training ----------------------------------------------------------------------------------------------
AR_MODELS = ["pixelcnn", "gated_pixelcnn", "cpixelcnn", "pixelrnn", "rowlstm"]
SMALL_AR = {
    "pixelcnn": ["model.net.hidden=16", "model.net.blocks=2"],
    "gated_pixelcnn": ["model.net.hidden=16", "model.net.blocks=2"],
    "cpixelcnn": ["model.net.hidden=16", "model.net.blocks=2"],
    "pixelrnn": ["model.net.hidden=64"],
    "rowlstm": ["model.net.hidden=16", "model.net.layers=1"],
}


@pytest.mark.parametrize("model", AR_MODELS)
def test_configs_compose_with_the_default_data(tmp_path: Path, model: str):
    cfg = compose_config(tmp_path, [f"model={model}", *SMALL_AR[model]])
    module = instantiate(cfg.model)
    assert module.coding.levels == 2 and module.conditional == (model == "cpixelcnn")
    images = torch.rand(2, 1, 32, 32) * 2 - 1
    assert module.log_likelihood(images, torch.tensor([3, 4])).shape == (2,)
    assert module.net(module.coding.embed(module.coding.encode(images)), torch.tensor([3, 4])).shape == (2, 2, 1, 32, 32)


# Held-out NLL (nats per 14x14 binarised digit) must fall at least this much from the untrained model after 20 Adam
# steps on batches of 64. Untrained models start near 196 * ln 2 = 136 nats; 20 steps reach well under 90.
NLL_DROP = 0.35


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gated_pixelcnn", "pixelrnn", "rowlstm"])
def test_short_training_lowers_held_out_nll(tmp_path: Path, model: str):
    from genlab.evaluation import held_out_nll

    cfg = compose_config(
        tmp_path,
        [f"model={model}", "data=mnist5k_binary", "data.image_size=14", *SMALL_AR[model], "model.optimizer.lr=3e-3",
         "trainer.max_epochs=1", "trainer.max_steps=20", "trainer.accelerator=cpu", "++trainer.enable_progress_bar=false",
         "++trainer.enable_model_summary=false", "logger=none", "callbacks=none", "print_config=false"],
    )
    torch.manual_seed(0)
    module = instantiate(cfg.model)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    before = held_out_nll(module, datamodule.val_dataloader(), max_batches=2)["val/nll_nats"]
    fit_bare(cfg, module, datamodule)
    after = held_out_nll(module, datamodule.val_dataloader(), max_batches=2)["val/nll_nats"]
    assert after < (1 - NLL_DROP) * before, (before, after)
