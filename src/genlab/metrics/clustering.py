"""Clustering accuracy: how well an unsupervised assignment (InfoGAN's categorical code) recovers the classes.

Code values have no names: code 3 may hold the sevens. The standard score (Chen et al. 2016, Sec. 7.2: "5 %
error" for InfoGAN on MNIST; Xie et al. 2016 for deep clustering) is the accuracy under the best one-to-one mapping
of clusters to classes, found by the Hungarian algorithm on the cluster x class counts.
"""

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from torchmetrics import Metric


def best_mapping_accuracy(counts: Tensor) -> float:
    """Accuracy of the best one-to-one cluster -> class mapping, from counts (clusters, classes)."""
    total = counts.sum()
    if total == 0:
        return float("nan")
    rows, cols = linear_sum_assignment(counts.cpu().numpy(), maximize=True)
    return float(counts[torch.as_tensor(rows), torch.as_tensor(cols)].sum() / total)


class ClusterAccuracy(Metric):
    """``update(clusters, labels)`` with cluster ids (N,) in 0..num_clusters-1 and true classes (N,) in
    0..num_classes-1; ``compute()`` = accuracy under the best one-to-one mapping (Hungarian assignment)."""

    full_state_update = False

    def __init__(self, num_clusters: int, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.num_clusters, self.num_classes = num_clusters, num_classes
        self.add_state("counts", default=torch.zeros(num_clusters, num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, clusters: Tensor, labels: Tensor) -> None:
        if clusters.shape != labels.shape or clusters.dim() != 1:
            raise ValueError(
                "ClusterAccuracy.update needs clusters and labels of one shape (N,), got "
                f"{tuple(clusters.shape)} and {tuple(labels.shape)}."
            )
        pairs = clusters.long() * self.num_classes + labels.long()
        counts = torch.bincount(pairs, minlength=self.num_clusters * self.num_classes)
        self.counts += counts.view(self.num_clusters, self.num_classes)

    def compute(self) -> Tensor:
        return torch.tensor(best_mapping_accuracy(self.counts))
