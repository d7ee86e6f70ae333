"""VideoDiT: a small diffusion transformer over space-time patches (the DiT family of Sora, LTX, Wan).

Each block attends within a frame (spatial), then across frames at each position
(temporal), then to the prompt's tokens (cross-attention), then an MLP; timestep and
pooled prompt modulate every sub-layer through adaLN-Zero. It predicts the flow-matching
velocity (noise − data) for pixel-space clips in [-1, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of timesteps in [0, 1000]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


#: learned queries of the attention pooling over prompt tokens
TEXT_QUERIES = 4


def sincos_positions(t_tokens: int, side: int, dim: int) -> torch.Tensor:
    """Fixed sin-cos embedding of each token's (frame, row, column), shape (1, T', side², dim), as in DiT.

    Its entries are ±1-sized, so a token knows where it is even when its pixels are pure noise.
    """

    def axis(n: int, width: int) -> torch.Tensor:
        half = width // 2
        freqs = 1.0 / 10_000 ** (torch.arange(half, dtype=torch.float64) / max(1, half))
        args = torch.arange(n, dtype=torch.float64)[:, None] * freqs[None]
        emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
        return F.pad(emb, (0, width - 2 * half))

    w_t = w_h = 2 * (dim // 6)
    w_w = dim - w_t - w_h
    t, h, w = axis(t_tokens, w_t), axis(side, w_h), axis(side, w_w)
    grid = torch.cat(
        [
            t[:, None, None].expand(t_tokens, side, side, w_t),
            h[None, :, None].expand(t_tokens, side, side, w_h),
            w[None, None, :].expand(t_tokens, side, side, w_w),
        ],
        dim=-1,
    )
    return grid.reshape(1, t_tokens, side * side, dim).float()


class Attention(nn.Module):
    """Multi-head attention; keys/values from ``context`` when given (cross-attention)."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, n, d = x.shape
        ctx = x if context is None else context
        q = self.q(x).view(b, n, self.heads, d // self.heads).transpose(1, 2)
        k, v = self.kv(ctx).view(b, ctx.shape[1], 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn_mask = None if mask is None else mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Spatial attention → temporal attention → cross-attention → MLP, each gated by adaLN-Zero."""

    def __init__(self, dim: int, heads: int, text_dim: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norms = nn.ModuleList([nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6) for _ in range(4)])
        self.spatial = Attention(dim, heads)
        self.temporal = Attention(dim, heads)
        self.cross = Attention(dim, heads, context_dim=dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        # shift, scale, gate for each of the 4 sub-layers
        self.modulation = nn.Linear(dim, 12 * dim)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        b, t, n, d = x.shape
        mods = self.modulation(F.silu(cond)).view(b, 1, 1, 12, d).unbind(dim=3)

        def mod(i: int, h: torch.Tensor) -> torch.Tensor:
            return self.norms[i](h) * (1 + mods[3 * i + 1]) + mods[3 * i]

        h = mod(0, x).reshape(b * t, n, d)
        x = x + mods[2] * self.spatial(h).view(b, t, n, d)
        h = mod(1, x).transpose(1, 2).reshape(b * n, t, d)
        x = x + mods[5] * self.temporal(h).view(b, n, t, d).transpose(1, 2)
        h = mod(2, x).reshape(b, t * n, d)
        x = x + mods[8] * self.cross(h, text, text_mask).view(b, t, n, d)
        x = x + mods[11] * self.mlp(mod(3, x))
        return x


class VideoDiT(ModelMixin, ConfigMixin, PeftAdapterMixin):
    """The built-in model's denoiser: (noisy clip, timestep, prompt tokens) → velocity.

    ``PeftAdapterMixin`` gives it diffusers' LoRA API (``add_adapter``, ``save_lora_adapter``,
    ``load_lora_adapter``, ``fuse_lora``) when ``peft`` is installed (the ``lora`` extra).
    """

    @register_to_config
    def __init__(
        self,
        num_frames: int = 16,
        sample_size: int = 64,
        in_channels: int = 3,
        patch_t: int = 2,
        patch_size: int = 8,
        hidden_dim: int = 192,
        depth: int = 8,
        heads: int = 6,
        text_dim: int = 384,
        mlp_ratio: float = 4.0,
        prediction_type: str = "sample",
        refiner_channels: int = 0,
        refiner_features: int = 0,
    ) -> None:
        super().__init__()
        if prediction_type not in ("sample", "velocity"):
            raise ValueError(f"prediction_type must be 'sample' or 'velocity', got {prediction_type!r}")
        if refiner_features and not refiner_channels:
            raise ValueError(f"refiner_features={refiner_features} needs a refiner (refiner_channels > 0)")
        self.t_tokens = num_frames // patch_t
        self.s_tokens = (sample_size // patch_size) ** 2
        self.patch = nn.Conv3d(
            in_channels, hidden_dim, (patch_t, patch_size, patch_size), (patch_t, patch_size, patch_size)
        )
        side = sample_size // patch_size
        self.register_buffer("pos_fixed", sincos_positions(self.t_tokens, side, hidden_dim), persistent=False)
        self.pos_t = nn.Parameter(torch.zeros(1, self.t_tokens, 1, hidden_dim))
        self.pos_s = nn.Parameter(torch.zeros(1, 1, self.s_tokens, hidden_dim))
        nn.init.normal_(self.pos_t, std=0.02)
        nn.init.normal_(self.pos_s, std=0.02)
        self.time_mlp = nn.Sequential(nn.Linear(256, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim))
        self.text_proj = nn.Linear(text_dim, hidden_dim)
        self.pooled_proj = nn.Sequential(nn.Linear(text_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim))
        # Attention pooling: learned queries read the prompt's tokens, free of the noisy clip. The
        # mean-pooled sentence vector is dominated by wording ("moving left" and "moving right"
        # are 0.98 alike, two paraphrases 0.4), and cross-attention from pure-noise tokens cannot
        # pick words out: without this the model at σ = 1 knew colours but not shape or motion.
        # With it, motion adherence reached 0.97–1.0 (benchmarks/RESULTS.md, "Diagnosis").
        self.text_queries = nn.Parameter(torch.randn(1, TEXT_QUERIES, hidden_dim) * 0.02)
        self.text_pool = Attention(hidden_dim, heads)
        self.text_pool_proj = nn.Sequential(nn.SiLU(), nn.Linear(TEXT_QUERIES * hidden_dim, hidden_dim))
        self.blocks = nn.ModuleList([Block(hidden_dim, heads, text_dim, mlp_ratio) for _ in range(depth)])
        self.final_norm = nn.LayerNorm(hidden_dim, elementwise_affine=False, eps=1e-6)
        self.final_mod = nn.Linear(hidden_dim, 2 * hidden_dim)
        self.final = nn.Linear(hidden_dim, in_channels * patch_t * patch_size * patch_size)
        for layer in (self.final_mod, self.final, self.text_pool_proj[1]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        # Pixel refiner (U-ViT ends with a 3×3 convolution for the same reason): a linear map from
        # one token to an 8×8 patch draws seams between patches and cannot draw a star's thin points;
        # three small per-frame convolutions over the prediction, the noisy input and σ can, where
        # the noisy input still shows them. Its last layer starts at zero, so adding it to a trained
        # model changes nothing until it learns.
        self.refiner: nn.Sequential | None = None
        if refiner_channels > 0:
            k, pad = (1, 3, 3), (0, 1, 1)
            self.refiner = nn.Sequential(
                nn.Conv3d(2 * in_channels + 1, refiner_channels, k, padding=pad),
                nn.SiLU(),
                nn.Conv3d(refiner_channels, refiner_channels, k, padding=pad),
                nn.SiLU(),
                nn.Conv3d(refiner_channels, in_channels, k, padding=pad),
            )
            nn.init.zeros_(self.refiner[-1].weight)
            nn.init.zeros_(self.refiner[-1].bias)
        # Per-pixel features from the tokens for the refiner: a 3-channel guess alone does not tell
        # it *which* shape to sharpen (a blurred star and a blurred square are alike), so it rounded
        # stars into squares; these carry the token's plan, caption included, down to the pixel.
        # The convolution that reads them starts at zero, so growing them into a run is a no-op.
        self.refiner_head: nn.Linear | None = None
        self.refiner_features_in: nn.Conv3d | None = None
        if refiner_features > 0:
            self.refiner_head = nn.Linear(hidden_dim, refiner_features * patch_t * patch_size * patch_size)
            self.refiner_features_in = nn.Conv3d(refiner_features, refiner_channels, (1, 3, 3), padding=(0, 1, 1))
            nn.init.zeros_(self.refiner_features_in.weight)
            nn.init.zeros_(self.refiner_features_in.bias)

    def _unpatchify(self, tokens: torch.Tensor, channels: int, shape: torch.Size) -> torch.Tensor:
        """(B, T', N, channels·pt·p·p) per-token values → (B, channels, T, H, W) pixels."""
        b, _, t, hgt, wid = shape
        pt, p = self.config.patch_t, self.config.patch_size
        x = tokens.view(b, t // pt, hgt // p, wid // p, channels, pt, p, p).permute(0, 4, 1, 5, 2, 6, 3, 7)
        return x.reshape(b, channels, t, hgt, wid)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        text_states: torch.Tensor,
        text_mask: torch.Tensor,
        text_pooled: torch.Tensor,
    ) -> torch.Tensor:
        """The flow-matching velocity (noise − clean) for ``sample`` (B, C, T, H, W) at ``timestep`` (B,) in [0, 1000].

        With ``prediction_type="sample"`` the network predicts the clean clip and the velocity is
        derived from it, ``(sample − clean) / σ``. Large pixel patches (4×8×8×3 = 768 values into
        a 192-wide token) cannot carry per-pixel noise through the network, but a clean clip of
        flat shapes lies on a low-dimensional manifold they can carry ("x-prediction", as in
        Li & He, *Back to Basics: Let Denoising Generative Models Denoise*, 2025).
        Text: states (B, L, 384), mask (B, L) bool, pooled (B, 384).
        """
        cfg = self.config
        b, c, t, hgt, wid = sample.shape
        x = self.patch(sample)  # (B, D, T', H', W')
        d, tt, hh, ww = x.shape[1:]
        x = x.permute(0, 2, 3, 4, 1).reshape(b, tt, hh * ww, d) + self.pos_fixed + self.pos_t + self.pos_s
        text = self.text_proj(text_states)
        queries = self.text_pool(self.text_queries.expand(b, -1, -1).to(text.dtype), text, text_mask)
        cond = (
            self.time_mlp(timestep_embedding(timestep, 256).to(text.dtype))
            + self.pooled_proj(text_pooled)
            + self.text_pool_proj(queries.reshape(b, -1))
        )
        for block in self.blocks:
            x = block(x, cond, text, text_mask)
        shift, scale = self.final_mod(F.silu(cond)).view(b, 1, 1, 2, d).unbind(dim=3)
        x = self.final_norm(x) * (1 + scale) + shift
        out = self._unpatchify(self.final(x), c, sample.shape)  # (B, C, T, H, W)
        sigma = (timestep.float() / 1000).clamp(min=1e-3).view(-1, 1, 1, 1, 1).to(out.dtype)
        if self.refiner is not None:
            level = sigma.expand(b, 1, t, hgt, wid)
            hidden = self.refiner[0](torch.cat([out, sample, level], dim=1))
            if self.refiner_head is not None and self.refiner_features_in is not None:
                features = self._unpatchify(self.refiner_head(x), cfg.refiner_features, sample.shape)
                hidden = hidden + self.refiner_features_in(features)
            out = out + self.refiner[1:](hidden)
        if cfg.prediction_type == "velocity":
            return out
        return (sample - out) / sigma
