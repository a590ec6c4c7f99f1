r"""The article's encoder–decoder ``TransformerModel`` (its PyTorch code example), complete.

The seed writes a PyTorch class with its bodies elided (``# ...``)::

    class TransformerModel(nn.Module):
        def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
            # ...
            self.encoder = nn.TransformerEncoder(encoder_layer, nlayers)
            self.decoder = nn.TransformerDecoder(decoder_layer, nlayers)
            # ...
        def forward(self, src, tgt, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, memory_mask):
            # ...
            src = self.encoder(src, src_mask, src_padding_mask)
            output = self.decoder(tgt, src, tgt_mask, memory_mask, tgt_padding_mask)
            # ...
            return output

Here it is with every ``# ...`` filled in, following the PyTorch tutorials it comes from:

    src, tgt  (seq, batch) token ids
      → embedding · √ninp  (src_embedding, tgt_embedding: ntoken × ninp each)
      → + sinusoidal positional encoding, dropout            (pos_encoder)
      → encoder: nlayers × TransformerEncoderLayer(ninp, nhead, nhid, dropout)
      → decoder: nlayers × TransformerDecoderLayer(ninp, nhead, nhid, dropout)
      → linear to ntoken logits                               (output_projection)

The embeddings are scaled by √ninp so that token vectors (initialised small) and the
positional encoding (entries in [−1, 1]) start on a similar scale.

Masks (torch conventions, see :mod:`tinyllm.nn.transformer`): ``src_mask`` (S, S),
``tgt_mask`` (T, T) — usually ``generate_square_subsequent_mask(T)`` so the decoder cannot
peek at later target tokens —, ``memory_mask`` (T, S); ``src_padding_mask`` (batch, S) and
``tgt_padding_mask`` (batch, T) are True at padding. One addition to the article's line:
``src_padding_mask`` is also passed to the decoder as ``memory_key_padding_mask``, so the
decoder does not attend to source padding either (the article's five positional arguments
leave that out; the PyTorch translation tutorial passes it).

For inference, :meth:`encode` runs the encoder once and :meth:`decode` runs the decoder on
the target prefix so far (greedy or beam search call it once per new token).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..nn import init
from ..tensor import Tensor
from .config import check_types, require

__all__ = ["TransformerModel", "Seq2SeqConfig"]


@dataclass
class Seq2SeqConfig:
    """Hyperparameters of a :class:`TransformerModel`, in GPT's field names (the article's
    arguments: ``vocab_size`` ntoken, ``n_embd`` ninp, ``n_head`` nhead, ``d_ff`` nhid,
    ``n_layer`` nlayers, ``dropout``). Defaults: a small model, the size of a training run's."""

    vocab_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    d_ff: int = 512
    dropout: float = 0.0

    def __post_init__(self):
        check_types(self)
        for name in ("vocab_size", "n_layer", "n_head", "n_embd", "d_ff"):
            require(getattr(self, name) >= 1, self, name, "an integer >= 1")
        require(self.n_embd % self.n_head == 0, self, "n_embd", f"divisible by n_head={self.n_head}")
        require(0.0 <= self.dropout < 1.0, self, "dropout", "in [0, 1)")


class TransformerModel(nn.Module):
    """Encoder–decoder Transformer over token ids (the article's code example).

    ``TransformerModel(ntoken, ninp, nhead, nhid, nlayers, dropout=0.5)``: ``ntoken``
    vocabulary size (source and target each get an embedding table of this size), ``ninp``
    model width, ``nhead`` attention heads, ``nhid`` feed-forward width, ``nlayers`` encoder
    layers and as many decoder layers.
    """

    def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5, max_len=5000):
        super().__init__()
        self.model_type = "Transformer"
        self.ntoken, self.ninp = int(ntoken), int(ninp)
        self.src_embedding = nn.Embedding(ntoken, ninp)
        self.tgt_embedding = nn.Embedding(ntoken, ninp)
        self.pos_encoder = nn.PositionalEncoding(ninp, dropout, max_len=max_len)
        encoder_layer = nn.TransformerEncoderLayer(ninp, nhead, nhid, dropout)
        self.encoder = nn.TransformerEncoder(encoder_layer, nlayers)
        decoder_layer = nn.TransformerDecoderLayer(ninp, nhead, nhid, dropout)
        self.decoder = nn.TransformerDecoder(decoder_layer, nlayers)
        self.output_projection = nn.Linear(ninp, ntoken)
        self.init_weights()

    @classmethod
    def from_config(cls, config: Seq2SeqConfig) -> "TransformerModel":
        """The model a :class:`Seq2SeqConfig` describes (the article's signature, filled from it)."""
        return cls(config.vocab_size, config.n_embd, config.n_head, config.d_ff, config.n_layer, dropout=config.dropout)

    def init_weights(self, initrange=0.1):
        """As the PyTorch language-model tutorial: embeddings and output weights
        U(−0.1, 0.1), output bias 0 (the Transformer layers keep torch's defaults)."""
        init.uniform_(self.src_embedding.weight, -initrange, initrange)
        init.uniform_(self.tgt_embedding.weight, -initrange, initrange)
        init.zeros_(self.output_projection.bias)
        init.uniform_(self.output_projection.weight, -initrange, initrange)

    def embed(self, table, ids):
        """(seq, batch) token ids → (seq, batch, ninp): table(ids) · √ninp + positional encoding
        (then dropout). ``ids`` is a tl.Tensor of integers or a host NumPy array."""
        if not isinstance(ids, Tensor):
            ids = Tensor(np.asarray(ids), device=self.device)
        if ids.ndim != 2:
            raise ValueError(f"TransformerModel: token ids must be shaped (seq, batch), got shape {ids.shape}")
        if ids.shape[0] == 0:
            raise ValueError(f"TransformerModel: token ids need at least one position (seq >= 1), "
                             f"got shape {ids.shape}")
        return self.pos_encoder(table(ids) * math.sqrt(self.ninp))

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, src_padding_mask=None, tgt_padding_mask=None,
                memory_mask=None):
        """src (S, batch) and tgt (T, batch) token ids → logits (T, batch, ntoken); with the
        causal ``tgt_mask``, the logits at position t predict target token t + 1."""
        src = self.embed(self.src_embedding, src)
        tgt = self.embed(self.tgt_embedding, tgt)
        if src.shape[1] != tgt.shape[1]:
            raise ValueError(f"TransformerModel: src (S, batch) and tgt (T, batch) have batch sizes "
                             f"{src.shape[1]} and {tgt.shape[1]}; they must be equal")
        src = self.encoder(src, src_mask, src_padding_mask)
        output = self.decoder(tgt, src, tgt_mask, memory_mask, tgt_padding_mask,
                              memory_key_padding_mask=src_padding_mask)
        output = self.output_projection(output)
        return output

    def encode(self, src, src_mask=None, src_padding_mask=None):
        """Source ids (S, batch) → memory (S, batch, ninp): the first half of ``forward``."""
        return self.encoder(self.embed(self.src_embedding, src), src_mask, src_padding_mask)

    def decode(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_padding_mask=None, memory_padding_mask=None):
        """Target ids (T, batch) and ``memory`` from :meth:`encode` → logits (T, batch, ntoken):
        the second half of ``forward`` (pass the source's padding mask as ``memory_padding_mask``)."""
        output = self.decoder(self.embed(self.tgt_embedding, tgt), memory, tgt_mask, memory_mask, tgt_padding_mask,
                              memory_key_padding_mask=memory_padding_mask)
        return self.output_projection(output)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=None):
        """The causal float mask (sz, sz) for ``tgt_mask``: −inf above the diagonal."""
        return nn.generate_square_subsequent_mask(sz, device=device, dtype=dtype)

    def attention_maps(self):
        """name → attention weights (batch, heads, L, S) of the last forward, for every
        encoder self-attention, decoder self-attention and cross-attention layer."""
        return nn.attention_maps(self)
