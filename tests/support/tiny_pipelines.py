"""Tiny random-weight diffusers video pipelines, built offline from configs in code.

Each builder saves a complete pipeline directory (model_index.json, weights, scheduler,
tokenizer) that ``DiffusionPipeline.from_pretrained`` loads with no network. The sizes
follow diffusers' own ``get_dummy_components`` so a two-step generation of a few frames
takes well under a second on a CPU. The weights are random: the frames are noise, but
the shapes, the step loop, seeding and cancellation are the real ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKLLTXVideo,
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    LTXPipeline,
    LTXVideoTransformer3DModel,
    WanPipeline,
    WanTransformer3DModel,
)
from tokenizers import Tokenizer, decoders, pre_tokenizers
from tokenizers.models import Unigram
from transformers import T5Config, T5EncoderModel, T5TokenizerFast, UMT5Config, UMT5EncoderModel

#: Width of the text encoders' hidden states, which the transformers take as caption/text features.
TEXT_DIM = 32

#: What a ModelCard needs to describe each tiny pipeline (add id, name, backend and options.path).
CARD_DEFAULTS: dict[str, dict[str, Any]] = {
    # LTX-Video wants num_frames = 8k+1 and sides divisible by 32.
    "ltx": {
        "default_num_frames": 9,
        "default_fps": 8,
        "default_width": 32,
        "default_height": 32,
        "max_num_frames": 17,
        "max_width": 64,
        "max_height": 64,
        "frame_multiple": 8,
        "frame_offset": 1,
        "default_steps": 2,
        "default_guidance_scale": 3.0,
        "options": {"size_multiple": 32, "call_kwargs": {"max_sequence_length": 16}},
    },
    # Wan wants num_frames = 4k+1 and sides divisible by 16 (VAE 8 × patch 2).
    "wan": {
        "default_num_frames": 9,
        "default_fps": 8,
        "default_width": 32,
        "default_height": 32,
        "max_num_frames": 17,
        "max_width": 64,
        "max_height": 64,
        "frame_multiple": 4,
        "frame_offset": 1,
        "default_steps": 2,
        "default_guidance_scale": 5.0,
        "options": {"size_multiple": 16, "call_kwargs": {"max_sequence_length": 16}},
    },
}

_WORDS = ("a", "the", "cat", "dog", "dance", "monkey", "lighthouse", "at", "dawn", "sea", "red", "blue")


def build_tokenizer() -> T5TokenizerFast:
    """A T5-style Unigram tokenizer over a tiny vocabulary: whole words plus single letters as a fallback."""
    # T5's layout: <pad>=0, </s>=1, <unk>=2; SentencePiece marks a word start with ▁.
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(f"▁{word}", -1.0) for word in _WORDS]
    pieces += [(chr(c), -5.0) for c in range(ord("a"), ord("z") + 1)]
    backend = Tokenizer(Unigram(pieces, unk_id=2, byte_fallback=False))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    return T5TokenizerFast(tokenizer_object=backend, extra_ids=0)


def _text_config(config_class: type[T5Config] | type[UMT5Config], vocab_size: int) -> Any:
    return config_class(
        vocab_size=vocab_size,
        d_model=TEXT_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
    )


def build_tiny_ltx(path: Path) -> None:
    """Save a tiny random LTXPipeline (text-to-video) to ``path``."""
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=TEXT_DIM,
    )
    torch.manual_seed(0)
    # Four blocks, the first two scaling space and time by 2: 4× compression each way, so 8k+1 frames decode
    # back to exactly 8k+1. The decoder is made as small as the encoder (its defaults are full size).
    vae = AutoencoderKLLTXVideo(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    torch.manual_seed(0)
    text_encoder = T5EncoderModel(_text_config(T5Config, len(tokenizer))).eval()
    pipe = LTXPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
    pipe.save_pretrained(path)


def build_tiny_wan(path: Path) -> None:
    """Save a tiny random WanPipeline (Wan 2.1 text-to-video) to ``path``."""
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    torch.manual_seed(0)
    text_encoder = UMT5EncoderModel(_text_config(UMT5Config, len(tokenizer))).eval()
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    # Wan 2.1 ships UniPC in flow mode; flow-matching Euler is the same family with one model call per step,
    # so the step count the backend reports equals the steps asked for.
    pipe = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        transformer=transformer,
    )
    pipe.save_pretrained(path)
