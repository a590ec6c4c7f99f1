"""The article's TransformerModel: equal to the same class written in PyTorch (outputs and every
parameter gradient), encode/decode equal to forward, attention maps, overfitting one batch,
and bad input."""
import math
import time

import numpy as np
import pytest

import tinyllm as tl
import tinyllm.functional as F
from tinyllm.models import TransformerModel
from torch_twins import (Adam, assert_close, assert_grads_close, backward_both, load_torch_weights, perturb,
                                 requires_torch, torch)

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")


if torch is not None:  # the article's class in PyTorch, the reference
    class TorchPositionalEncoding(torch.nn.Module):
        """The PyTorch tutorial's positional encoding (table as a non-persistent buffer)."""

        def __init__(self, d_model, dropout=0.1, max_len=5000):
            super().__init__()
            self.dropout = torch.nn.Dropout(p=dropout)
            position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
            div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
            pe = torch.zeros(max_len, 1, d_model, dtype=torch.float64)
            pe[:, 0, 0::2] = torch.sin(position * div_term)
            pe[:, 0, 1::2] = torch.cos(position * div_term)
            self.register_buffer("pe", pe, persistent=False)

        def forward(self, x):
            return self.dropout(x + self.pe[: x.size(0)])


    class TorchTransformerModel(torch.nn.Module):
        """The article's class in PyTorch, with the same ``# ...`` filled in as tinyllm's."""

        def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
            super().__init__()
            self.ninp = ninp
            self.src_embedding = torch.nn.Embedding(ntoken, ninp)
            self.tgt_embedding = torch.nn.Embedding(ntoken, ninp)
            self.pos_encoder = TorchPositionalEncoding(ninp, dropout)
            encoder_layer = torch.nn.TransformerEncoderLayer(ninp, nhead, nhid, dropout)
            self.encoder = torch.nn.TransformerEncoder(encoder_layer, nlayers)
            decoder_layer = torch.nn.TransformerDecoderLayer(ninp, nhead, nhid, dropout)
            self.decoder = torch.nn.TransformerDecoder(decoder_layer, nlayers)
            self.output_projection = torch.nn.Linear(ninp, ntoken)

        def forward(self, src, tgt, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, memory_mask):
            src = self.pos_encoder(self.src_embedding(src) * math.sqrt(self.ninp))
            tgt = self.pos_encoder(self.tgt_embedding(tgt) * math.sqrt(self.ninp))
            src = self.encoder(src, src_mask, src_padding_mask)
            output = self.decoder(tgt, src, tgt_mask, memory_mask, tgt_padding_mask,
                                  memory_key_padding_mask=src_padding_mask)
            return self.output_projection(output)


def _batch(rng, ntoken, source_length, length, batch):
    src = rng.integers(0, ntoken, size=(source_length, batch))
    tgt = rng.integers(0, ntoken, size=(length, batch))
    src_padding = np.arange(source_length)[None, :] >= rng.integers(1, source_length + 1, size=batch)[:, None]
    tgt_padding = np.arange(length)[None, :] >= rng.integers(1, length + 1, size=batch)[:, None]
    return src, tgt, src_padding, tgt_padding


@requires_torch
@pytest.mark.parametrize("nlayers, nhead", [(1, 1), (2, 4)])
def test_transformer_model_matches_torch(nlayers, nhead):
    rng = np.random.default_rng(nlayers)
    ntoken, ninp, nhid = 11, 8, 16
    torch.manual_seed(nlayers)
    reference = perturb(TorchTransformerModel(ntoken, ninp, nhead, nhid, nlayers, dropout=0.0).double(), rng).train()
    model = TransformerModel(ntoken, ninp, nhead, nhid, nlayers, dropout=0.0).double().train()
    load_torch_weights(model, reference)
    src, tgt, src_padding, tgt_padding = _batch(rng, ntoken, 6, 5, 3)
    tgt_mask = model.generate_square_subsequent_mask(5, dtype=np.float64)
    memory_mask = rng.standard_normal((5, 6))
    out = model(src, tgt, None, tgt_mask, src_padding, tgt_padding, memory_mask)
    # torch wants one mask type: the float forms of the padding masks
    t_out = reference(torch.from_numpy(src), torch.from_numpy(tgt), None, torch.from_numpy(tgt_mask.numpy()),
                      torch.from_numpy(np.where(src_padding, -np.inf, 0.0)),
                      torch.from_numpy(np.where(tgt_padding, -np.inf, 0.0)), torch.from_numpy(memory_mask))
    what = f"TransformerModel[nlayers={nlayers}, nhead={nhead}]"
    assert out.shape == (5, 3, ntoken)
    assert_close(out, t_out, what + " logits")
    backward_both(out, t_out, rng)
    assert_grads_close(model, reference, what)


def test_encode_decode_equal_forward_and_attention_maps():
    tl.manual_seed(0)
    model = TransformerModel(13, 16, 2, 32, 2, dropout=0.5).eval()
    rng = np.random.default_rng(0)
    src, tgt, src_padding, tgt_padding = _batch(rng, 13, 7, 4, 2)
    tgt_mask = model.generate_square_subsequent_mask(4)
    full = model(src, tgt, None, tgt_mask, src_padding, tgt_padding, None).numpy()
    memory = model.encode(src, src_padding_mask=src_padding)
    stepwise = model.decode(tgt, memory, tgt_mask=tgt_mask, tgt_padding_mask=tgt_padding,
                            memory_padding_mask=src_padding).numpy()
    np.testing.assert_allclose(stepwise, full, rtol=1e-6)
    maps = model.attention_maps()
    assert list(maps) == ["encoder.layers.0.self_attn", "encoder.layers.1.self_attn",
                          "decoder.layers.0.self_attn", "decoder.layers.0.multihead_attn",
                          "decoder.layers.1.self_attn", "decoder.layers.1.multihead_attn"]
    cross = maps["decoder.layers.1.multihead_attn"].numpy()
    assert cross.shape == (2, 2, 4, 7)
    padded = np.broadcast_to(src_padding[:, None, None, :], cross.shape)
    assert not cross[padded].any()  # no attention to source padding
    # the decoder's self-attention is causal
    decoder_self = maps["decoder.layers.0.self_attn"].numpy()
    assert not decoder_self[..., np.triu(np.ones((4, 4), dtype=bool), 1)].any()


def test_structure_and_defaults():
    model = TransformerModel(ntoken=20, ninp=16, nhead=4, nhid=32, nlayers=3)
    assert model.pos_encoder.dropout.p == 0.5 and model.encoder.layers[0].dropout.p == 0.5
    assert len(model.encoder.layers) == 3 and len(model.decoder.layers) == 3
    assert model.encoder.norm is None and model.decoder.norm is None  # as the article's code: no final norms
    assert np.abs(model.src_embedding.weight.numpy()).max() <= 0.1
    assert not model.output_projection.bias.numpy().any()


def test_transformer_model_overfits_one_batch():
    """Learn to reverse 8 sequences: the loss of that batch should go to ~0."""
    tl.manual_seed(0)
    rng = np.random.default_rng(0)
    ntoken, bos, length, batch = 10, 0, 6, 8
    model = TransformerModel(ntoken, ninp=32, nhead=4, nhid=64, nlayers=2, dropout=0.0)
    src = rng.integers(1, ntoken, size=(length, batch))
    target = src[::-1]
    tgt_in = np.concatenate([np.full((1, batch), bos), target[:-1]])
    mask = model.generate_square_subsequent_mask(length)
    optimizer = Adam(model.parameters(), lr=3e-3)
    start = time.perf_counter()
    for step in range(300):
        logits = model(src, tgt_in, tgt_mask=mask)
        loss = F.cross_entropy(logits.reshape(-1, ntoken), target.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.01:
            break
    assert loss.item() < 0.05, f"loss still {loss.item():.3f} after {step + 1} steps"
    assert time.perf_counter() - start < 30


def test_transformer_model_bad_input():
    model = TransformerModel(10, 8, 2, 16, 1)
    with pytest.raises(ValueError, match=r"token ids must be shaped \(seq, batch\), got shape \(5,\)"):
        model(np.arange(5), np.zeros((3, 1), dtype=np.int64))
    with pytest.raises(IndexError, match="id 12 is out of range for 10 embeddings"):
        model(np.full((4, 2), 12), np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r"2-D attn_mask must have shape \(L, S\) = \(3, 3\), got \(4, 4\)"):
        model(np.zeros((4, 2), dtype=np.int64), np.zeros((3, 2), dtype=np.int64),
              tgt_mask=model.generate_square_subsequent_mask(4))


def test_transformer_model_on_every_device(device):
    model = TransformerModel(13, 16, 2, 32, 2, dropout=0.0)
    rng = np.random.default_rng(0)
    src, tgt, src_padding, tgt_padding = _batch(rng, 13, 7, 4, 2)
    mask = model.generate_square_subsequent_mask(4)
    expected = model(src, tgt, None, mask, src_padding, tgt_padding, None).numpy()
    model.to(device)
    on = [tl.Tensor(a, device=device) for a in (src, tgt, src_padding, tgt_padding)]
    out = model(on[0], on[1], None, model.generate_square_subsequent_mask(4, device=device), on[2], on[3], None)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-5)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
