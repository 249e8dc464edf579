"""The sequence models of the early kind (torch, CPU): a GRU over the per-minute metric
windows (with a missing-value mask channel and the user's failure history at its head), and a
dense autoencoder whose reconstruction error is an anomaly score. Saved as state_dicts
(`torch.save`), loaded with `weights_only=True`; nothing else is deserialised."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

HIST = ("user_fail_rate", "user_n", "user_recent_fails")


def seq_tensor(seq: np.ndarray) -> torch.Tensor:
    """(jobs, minutes, 2*metrics): values / 100 (0 where missing) and the observed mask."""
    have = np.isfinite(seq)
    x = np.where(have, seq / 100.0, 0.0)
    return torch.tensor(np.concatenate([x, have.astype(np.float64)], axis=2), dtype=torch.float32)


def hist_tensor(h: np.ndarray) -> torch.Tensor:
    """History columns (fail rate, n, recent fails) made small: NaN -> 0, counts log1p."""
    h = np.nan_to_num(np.asarray(h, dtype=np.float64), nan=0.0)
    h = np.c_[h[:, :1], np.log1p(np.maximum(h[:, 1:], 0))]
    return torch.tensor(h, dtype=torch.float32)


class GRUNet(nn.Module):
    def __init__(self, n_in: int, n_hist: int, hidden: int = 16) -> None:
        super().__init__()
        self.gru = nn.GRU(n_in, hidden, batch_first=True)
        self.head = nn.Linear(hidden + n_hist, 1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        _, last = self.gru(x)
        return self.head(torch.cat([last[-1], h], dim=1)).squeeze(1)


class AENet(nn.Module):
    def __init__(self, n_in: int, code: int = 6) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(n_in, 24), nn.ReLU(), nn.Linear(24, code))
        self.dec = nn.Sequential(nn.Linear(code, 24), nn.ReLU(), nn.Linear(24, n_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(self.enc(x))


def _batches(n: int, size: int, gen: torch.Generator):
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n, size):
        yield perm[i:i + size]


def fit_gru(seq: np.ndarray, hist: np.ndarray, y: np.ndarray, epochs: int = 25,
            seed: int = 0) -> GRUNet:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x, h = seq_tensor(seq), hist_tensor(hist)
    t = torch.tensor(y, dtype=torch.float32)
    net = GRUNet(x.shape[2], h.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    pos = float(max(t.mean().item(), 1e-3))
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor((1 - pos) / pos))
    for _ in range(epochs):
        for b in _batches(len(t), 128, gen):
            opt.zero_grad()
            loss_fn(net(x[b], h[b]), t[b]).backward()
            opt.step()
    return net.eval()


def gru_score(net: GRUNet, seq: np.ndarray, hist: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.sigmoid(net(seq_tensor(seq), hist_tensor(hist))).numpy().astype(np.float64)


def fit_ae(seq: np.ndarray, epochs: int = 40, seed: int = 0) -> AENet:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x = seq_tensor(seq).reshape(len(seq), -1)
    net = AENet(x.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(epochs):
        for b in _batches(len(x), 128, gen):
            opt.zero_grad()
            ((net(x[b]) - x[b]) ** 2).mean().backward()
            opt.step()
    return net.eval()


def ae_error(net: AENet, seq: np.ndarray) -> np.ndarray:
    """Reconstruction error per job (mean squared, over the values and the mask)."""
    x = seq_tensor(seq).reshape(len(seq), -1)
    with torch.no_grad():
        return ((net(x) - x) ** 2).mean(dim=1).numpy().astype(np.float64)


def save(net: nn.Module):
    return lambda path: torch.save(net.state_dict(), str(path))


def load(net: nn.Module, path: Path) -> nn.Module:
    net.load_state_dict(torch.load(str(path), weights_only=True, map_location="cpu"))
    return net.eval()
