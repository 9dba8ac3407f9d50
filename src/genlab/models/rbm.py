"""``RestrictedBoltzmannMachine``: a Bernoulli-Bernoulli RBM (:class:`genlab.nets.BernoulliRBM`) trained by
contrastive divergence, with annealed importance sampling for its log-likelihood.

Training. The log-likelihood gradient of an RBM is <v h^T>_data - <v h^T>_model; the model term needs samples from
p(v, h). CD-k (Hinton 2002) takes them from k block Gibbs sweeps started at the data; persistent CD (Tieleman 2008)
keeps ``persistent_chains`` fantasy chains running across updates instead. The update is a statistic, not the
gradient of a loss that autograd could give, so the module uses manual optimization: it writes the CD estimate of
the *negative* log-likelihood gradient into each parameter's ``.grad`` and steps a torch optimizer, SGD with
momentum and L2 weight decay on W only, as in Hinton & Salakhutdinov's rbm.m and Hinton's guide (2010, "A Practical
Guide to Training RBMs", Secs. 9-10: momentum 0.5 for the first epochs, then 0.9). Positive statistics use the
data and p(h | v_data); negative ones the chains' binary states v_k and p(h | v_k) (probabilities, not sampled
hidden states, to cut sampling noise; Sec. 3 of the guide). Visible biases start at the log-odds of the training
pixels' on-rates (Sec. 8), which also define the AIS base model.

Likelihood. log p(v) = -F(v) - log Z. Z is exact for tiny hidden layers (enumerate 2^H states); otherwise the AIS
estimate of Salakhutdinov & Murray (2008, "On the Quantitative Analysis of Deep Belief Networks", Sec. 3-4): anneal
from the base-rate model p_A (W = 0, visible biases = data log-odds) to the RBM through
p_k(v) ∝ p*_A(v)^(1 - beta_k) p*_B(v)^beta_k, with Gibbs transitions that leave each p_k invariant. Their protocol:
100 runs, 14,500 betas (500 uniform in [0, 0.5], 4,000 in [0.5, 0.9], 10,000 in [0.9, 1]). AIS tends to
underestimate log Z with too few betas, which *over*states the log-likelihood: report numbers with the full schedule.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader

from genlab.data.batch import Batch
from genlab.models.base import GenerativeModule, reject_condition
from genlab.nets.rbm import EXACT_MAX_HIDDEN, BernoulliRBM, bernoulli

OptimizerFactory = Callable[..., torch.optim.Optimizer]
#: Salakhutdinov & Murray 2008's schedule: (upper beta, share of the betas) per piece, 500 / 4,000 / 10,000 of 14,500
ANNEALING_PIECES = ((0.5, 500 / 14500), (0.9, 4000 / 14500), (1.0, 10000 / 14500))


def contrastive_divergence_gradients(rbm: BernoulliRBM, v_data: Tensor, v_model: Tensor) -> dict[str, Tensor]:
    """The CD estimate of the gradient of the mean negative log-likelihood, per parameter name of ``rbm``:
    -(<v h^T>_data - <v h^T>_model) with h replaced by p(h | v), from data rows ``v_data`` and chain states
    ``v_model`` (the counts of rows may differ: persistent chains)."""
    h_data, h_model = rbm.hidden_probabilities(v_data), rbm.hidden_probabilities(v_model)
    return {
        "weight": -(v_data.T @ h_data / len(v_data) - v_model.T @ h_model / len(v_model)),
        "visible_bias": -(v_data.mean(0) - v_model.mean(0)),
        "hidden_bias": -(h_data.mean(0) - h_model.mean(0)),
    }


def annealing_schedule(num_betas: int) -> Tensor:
    """``num_betas + 1`` inverse temperatures from 0 to 1, split over [0, 0.5], [0.5, 0.9], [0.9, 1] in the shares
    of Salakhutdinov & Murray's 500 / 4,000 / 10,000 (exactly theirs at num_betas = 14,500)."""
    if num_betas < len(ANNEALING_PIECES):
        raise ValueError(f"model.ais_betas must be at least {len(ANNEALING_PIECES)} (one per piece of the schedule), got {num_betas}.")
    pieces, low, used = [torch.zeros(1, dtype=torch.float64)], 0.0, 0
    for index, (high, share) in enumerate(ANNEALING_PIECES):
        count = num_betas - used if index == len(ANNEALING_PIECES) - 1 else max(1, round(share * num_betas))
        pieces.append(torch.linspace(low, high, count + 1, dtype=torch.float64)[1:])
        low, used = high, used + count
    return torch.cat(pieces)


@dataclass
class AISEstimate:
    """log Z and log(Z_hat -/+ 3 standard errors of the mean importance weight), as Salakhutdinov & Murray report."""

    log_z: float
    log_z_low: float
    log_z_high: float


@torch.no_grad()
def ais_log_partition(
    rbm: BernoulliRBM, base_logits: Tensor, runs: int = 100, num_betas: int = 14500, generator: torch.Generator | None = None
) -> AISEstimate:
    """AIS estimate of log Z of ``rbm`` from the base-rate model with visible log-odds ``base_logits`` (V,)."""
    if runs < 1:
        raise ValueError(f"model.ais_runs must be >= 1, got {runs}.")
    betas = annealing_schedule(num_betas).tolist()
    base = base_logits.to(rbm.weight)
    v = bernoulli(torch.sigmoid(base).expand(runs, -1), generator)
    log_weights = torch.zeros(runs, dtype=torch.float64, device=v.device)
    for previous, beta in zip(betas[:-1], betas[1:]):
        # log p*_k(v) - log p*_{k-1}(v): the base and RBM visible terms, and the hidden units' softplus, in float64
        activation = (rbm.hidden_bias + v @ rbm.weight).double()
        visible_term = (v @ rbm.visible_bias - v @ base).double()
        log_weights += (beta - previous) * visible_term + (F.softplus(beta * activation) - F.softplus(previous * activation)).sum(1)
        if beta < 1.0:  # a Gibbs sweep that leaves p_k invariant
            h = bernoulli(torch.sigmoid(beta * activation).to(v.dtype), generator)
            v = bernoulli(torch.sigmoid((1 - beta) * base + beta * (rbm.visible_bias + h @ rbm.weight.T)), generator)
    log_z_base = float(F.softplus(base.double()).sum()) + rbm.hidden * math.log(2)
    log_mean = float(torch.logsumexp(log_weights, 0)) - math.log(runs)
    # standard error of the mean weight, relative to the mean: sd(w / mean w) / sqrt(runs)
    relative = float(torch.exp(log_weights - log_mean).std()) / math.sqrt(runs) if runs > 1 else 0.0
    low = log_mean + math.log(1 - 3 * relative) if 3 * relative < 1 else -math.inf
    return AISEstimate(log_z_base + log_mean, log_z_base + low, log_z_base + log_mean + math.log(1 + 3 * relative))


class RestrictedBoltzmannMachine(GenerativeModule):
    """Bernoulli-Bernoulli RBM on binary images, trained by CD-k or persistent CD.

    Args:
        channels, image_size: the data's image shape; V = channels * image_size^2 visible units. Pixels must be
            binary (-1 / 1 in genlab's [-1, 1] convention: ``data=mnist5k_binary``).
        hidden_units: H (Salakhutdinov & Murray 2008: 500 on MNIST).
        optimizer: ``torch.optim`` constructor missing only the parameter groups (W with ``weight_decay``, biases
            without); its ``momentum`` is the value after the first ``initial_momentum_epochs`` epochs.
        gibbs_steps: k of CD-k (or sweeps per update of the persistent chains).
        persistent: persistent CD (Tieleman 2008) with ``persistent_chains`` fantasy chains, checkpointed.
        weight_decay: L2 weight cost on W (rbm.m: 0.0002).
        initial_momentum, initial_momentum_epochs: momentum for the first epochs (rbm.m, Hinton's guide: 0.5 for 5).
        init_std: std of the initial weights (the guide: 0.01).
        sample_steps: block Gibbs sweeps behind each ``sample()``, from a seeded Bernoulli(0.5) start.
        ais_runs, ais_betas: the AIS budget of ``log_likelihood`` when H > 20 (the paper: 100 and 14,500).
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        hidden_units: int,
        optimizer: OptimizerFactory,
        gibbs_steps: int = 1,
        persistent: bool = False,
        persistent_chains: int = 100,
        weight_decay: float = 2e-4,
        initial_momentum: float = 0.5,
        initial_momentum_epochs: int = 5,
        init_std: float = 0.01,
        sample_steps: int = 1000,
        ais_runs: int = 100,
        ais_betas: int = 14500,
    ):
        super().__init__()
        for name, value in (("gibbs_steps", gibbs_steps), ("sample_steps", sample_steps), ("persistent_chains", persistent_chains)):
            if value < 1:
                raise ValueError(f"model.{name} must be a positive integer, got {value}.")
        if weight_decay < 0 or initial_momentum_epochs < 0:
            raise ValueError(f"model.weight_decay and model.initial_momentum_epochs must be >= 0, got {weight_decay}, {initial_momentum_epochs}.")
        annealing_schedule(ais_betas)  # refuses a schedule too short to have its three pieces
        self.automatic_optimization = False
        self.image_shape = (channels, image_size, image_size)
        self.rbm = BernoulliRBM(channels * image_size * image_size, hidden_units, init_std)
        self.optimizer_factory = optimizer
        self.gibbs_steps, self.persistent, self.weight_decay = gibbs_steps, persistent, weight_decay
        self.initial_momentum, self.initial_momentum_epochs = initial_momentum, initial_momentum_epochs
        self.sample_steps, self.ais_runs, self.ais_betas = sample_steps, ais_runs, ais_betas
        # the training pixels' log-odds: the visible biases' start and the AIS base model (set when training starts)
        self.register_buffer("base_rate_logits", torch.zeros(self.rbm.visible))
        self.register_buffer("base_rates_fitted", torch.tensor(False))
        if persistent:
            self.register_buffer("chains", bernoulli(torch.full((persistent_chains, self.rbm.visible), 0.5), self.rng))
        self._log_partition: tuple[tuple[int, ...], float] | None = None

    def configure_optimizers(self):
        groups = [
            {"params": [self.rbm.weight], "weight_decay": self.weight_decay},
            {"params": [self.rbm.visible_bias, self.rbm.hidden_bias], "weight_decay": 0.0},
        ]
        return self.optimizer_factory(groups)

    # -- data ---------------------------------------------------------------------------------------------------------
    def visible(self, images: Tensor) -> Tensor:
        """Binary images in [-1, 1] (N, C, H, W) -> visible states {0, 1} (N, V); anything else is refused."""
        if tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"{type(self).__name__} was built for images of shape {self.image_shape} (model.channels, model.image_size), "
                f"got {tuple(images.shape[1:])}."
            )
        if not bool(((images == 1) | (images == -1)).all()):
            raise ValueError(
                f"{type(self).__name__} models binary pixels, but the images hold values in "
                f"[{float(images.min()):.3g}, {float(images.max()):.3g}] other than -1 and 1. Train it on binarised data "
                "(data=mnist5k_binary)."
            )
        return ((images.flatten(1) + 1) / 2).to(self.rbm.weight.dtype)

    def on_fit_start(self) -> None:
        if bool(self.base_rates_fitted) or self.trainer.datamodule is None:
            return
        datamodule = self.trainer.datamodule
        total, count = torch.zeros_like(self.base_rate_logits), 0
        # every training image once (the training loader shuffles and drops the last partial batch)
        for batch in DataLoader(datamodule.train_set, batch_size=500, collate_fn=datamodule.collate):
            v = self.visible(batch.images.to(self.device))
            total, count = total + v.sum(0), count + len(v)
        rates = (total + 1) / (count + 2)  # Laplace-smoothed, so pixels never on get a finite log-odds
        with torch.no_grad():
            self.base_rate_logits.copy_(rates.log() - (-rates).log1p())
            self.rbm.visible_bias.copy_(self.base_rate_logits)
        self.base_rates_fitted.fill_(True)

    def on_train_epoch_start(self) -> None:
        optimizer = self.optimizers().optimizer
        if "momentum" not in optimizer.defaults:
            return
        early = self.current_epoch < self.initial_momentum_epochs
        for group in optimizer.param_groups:
            group["momentum"] = self.initial_momentum if early else optimizer.defaults["momentum"]

    # -- training -----------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def training_step(self, batch: Batch, batch_idx: int) -> None:
        v = self.visible(batch.images)
        chain = self.chains if self.persistent else v
        for _ in range(self.gibbs_steps):
            chain, _ = self.rbm.gibbs_step(chain, self.rng)
        gradients = contrastive_divergence_gradients(self.rbm, v, chain)
        optimizer = self.optimizers()
        optimizer.zero_grad()
        for name, parameter in self.rbm.named_parameters():
            parameter.grad = gradients[name]
        optimizer.step()
        if self.persistent:
            self.chains.copy_(chain)
        reconstruction = self.rbm.visible_probabilities(self.rbm.hidden_probabilities(v))
        logs = {
            "train/free_energy": self.rbm.free_energy(v).mean(),
            "train/reconstruction_error": (v - reconstruction).square().sum(1).mean(),
        }
        self.log_dict(logs, prog_bar=True, batch_size=len(v))

    # -- the sampling contract and friends ----------------------------------------------------------------------------
    def sample(self, n: int, *, condition: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """p(v | h) after ``sample_steps`` block Gibbs sweeps from a seeded Bernoulli(0.5) start, in [-1, 1]."""
        reject_condition(self, condition)
        return self.gibbs_chain(n, [self.sample_steps], generator)[0]

    @torch.no_grad()
    def gibbs_chain(self, n: int, steps: Sequence[int], generator: torch.Generator | None = None) -> Tensor:
        """(len(steps), n, C, H, W): the visible means p(v | h) in [-1, 1] of ``n`` chains after each number of
        sweeps in ``steps`` (increasing), all chains started from Bernoulli(0.5) noise drawn from ``generator``."""
        steps = list(steps)
        if not steps or steps[0] < 1 or any(b <= a for a, b in zip(steps, steps[1:])):
            raise ValueError(f"Gibbs chain snapshots need increasing positive sweep counts, got {steps}.")
        rng = generator or self.rng
        v = bernoulli(torch.full((n, self.rbm.visible), 0.5, device=self.device), rng)
        snapshots, done = [], 0
        for target in steps:
            while done < target:
                v, mean = self.rbm.gibbs_step(v, rng)
                done += 1
            snapshots.append(mean)
        return torch.stack(snapshots).view(len(steps), n, *self.image_shape) * 2 - 1

    @torch.no_grad()
    def filters(self) -> Tensor:
        """(H, C, h, w): each hidden unit's incoming weights as an image, scaled by its largest |w| into [-1, 1]."""
        weights = self.rbm.weight.T
        scale = weights.abs().amax(1, keepdim=True).clamp_min(1e-12)
        return (weights / scale).view(self.rbm.hidden, *self.image_shape)

    @torch.no_grad()
    def free_energy(self, images: Tensor) -> Tensor:
        """F(v) per image (nats): log p(v) = -F(v) - log Z, so a lower held-out F means more probable data."""
        return self.rbm.free_energy(self.visible(images.to(self.device)))

    @torch.no_grad()
    def log_partition(self) -> float:
        """log Z: exact for H <= 20, else the AIS estimate (``ais_runs``, ``ais_betas``, seed 0), cached until the
        parameters change (in-place updates and ``load_state_dict`` bump their version counters)."""
        key = tuple(t._version for t in (*self.rbm.parameters(), self.base_rate_logits))
        if self._log_partition is None or self._log_partition[0] != key:
            if self.rbm.hidden <= EXACT_MAX_HIDDEN:
                value = float(self.rbm.exact_log_partition())
            else:
                estimate = ais_log_partition(self.rbm, self.base_rate_logits, self.ais_runs, self.ais_betas, torch.Generator().manual_seed(0))
                value = estimate.log_z
            self._log_partition = (key, value)
        return self._log_partition[1]

    @torch.no_grad()
    def log_likelihood(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        """log p(v) = -F(v) - log Z in nats per image (the held-out likelihood callback calls this)."""
        return -self.free_energy(images) - self.log_partition()

    def bits_per_dim(self, nll_nats: Tensor, images: Tensor) -> Tensor:
        return nll_nats / (images[0].numel() * math.log(2))
