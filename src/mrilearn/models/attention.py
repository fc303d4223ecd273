"""3-D self-attention (SAGAN, Zhang et al. 2019) for mDCSRN, §8.3.2.

The block lets every location gather features from the whole patch; its attention map shows
where the network looked to produce a voxel. To keep the (N × N) map affordable in 3-D it is
computed on a 2× down-sampled feature map (§8.3.2), and the attended features are up-sampled
back. γ starts at 0, so an inserted block is the identity until training moves it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention3d(nn.Module):
    """y = x + γ · up(W_v · Σ_j softmax_j(f_iᵀ g_j) · h_j), on a ``downsample``× pooled map.

    f, g, h are 1×1×1 convs to ``channels // reduction`` channels (k = 8 in SAGAN and §8.3.2),
    W_v maps back to ``channels``. With ``keep_attention`` set, the last forward stores its
    attention map in ``attention`` as (B, N, N) (queries × keys, rows sum to 1) over the pooled
    grid ``attention_grid``; it is off by default because the map is large.
    Shape: (B, C, X, Y, Z) → (B, C, X, Y, Z).
    """

    def __init__(self, channels: int, reduction: int = 8, downsample: int = 2) -> None:
        super().__init__()
        inner = max(1, channels // reduction)
        self.query = nn.Conv3d(channels, inner, 1)
        self.key = nn.Conv3d(channels, inner, 1)
        self.value = nn.Conv3d(channels, inner, 1)
        self.out = nn.Conv3d(inner, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.downsample = downsample
        self.keep_attention = False
        self.attention: torch.Tensor | None = None
        self.attention_grid: tuple[int, ...] = ()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.downsample
        small = F.avg_pool3d(x, d, ceil_mode=True) if d > 1 else x
        b, _, *grid = small.shape
        q = self.query(small).flatten(2).transpose(1, 2)  # (B, N, C')
        k = self.key(small).flatten(2)  # (B, C', N)
        v = self.value(small).flatten(2)  # (B, C', N)
        attn = torch.softmax(torch.bmm(q, k), dim=-1)  # (B, N queries, N keys)
        o = torch.bmm(v, attn.transpose(1, 2)).view(b, -1, *grid)
        o = self.out(o)
        if d > 1:
            o = F.interpolate(o, size=x.shape[2:], mode="trilinear", align_corners=False)
        if self.keep_attention:
            self.attention, self.attention_grid = attn.detach(), tuple(grid)
        return x + self.gamma * o

    def query_map(self, voxel: tuple[int, int, int], batch: int = 0) -> torch.Tensor:
        """Attention of the query at full-resolution ``voxel`` over the pooled key grid,
        as an (X', Y', Z') map summing to 1 (needs a forward with ``keep_attention``)."""
        if self.attention is None:
            raise RuntimeError("no attention stored: set keep_attention and run a forward")
        grid = self.attention_grid
        q = [min(c // self.downsample, n - 1) for c, n in zip(voxel, grid)]
        index = (q[0] * grid[1] + q[1]) * grid[2] + q[2]
        return self.attention[batch, index].view(grid)
