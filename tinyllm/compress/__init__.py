"""What models cost and how to cut it.

Files, in the order of the chapter:

* ``flops.py``          FLOPs per token and per step (6N + attention; GPT and TransformerModel),
                        the measured matmul peak, MFU, and a counter of the FLOPs that really run
* ``memory.py``         parameters, gradients, optimizer state, activations: estimated, counted
                        in the graph, measured at their peak
* ``recompute.py``  activation recomputation for Transformer blocks; gradient accumulation
* ``quantize.py``       int8 weights (symmetric, per output channel) for Linear and Embedding
* ``prune.py``          global magnitude pruning with masks kept through fine-tuning; heads
* ``distill.py``        the distillation loss (T²-scaled KL + cross-entropy); student vs teacher
* ``precision.py``      mixed precision: float16 compute, float32 masters, dynamic loss scaling
* ``lm.py``             runs reopened, models trained (the trainer's loop) and scored

The experiments built on these (distillation, sparsity curves, the bias and regularization
studies) are in :mod:`tinyllm.lab`; ``python -m tinyllm compress ...`` is
:mod:`tinyllm.compress_cli`.

docs/compute.md gives the measured figures and the commands that produce them.
"""
from .flops import (gpt_flops_per_token, gpt_training_flops_per_step, matmul_peak_flops, mfu, estimate_mfu,
                    transformer_model_training_flops_per_step, transformer_model_flops_per_token, FlopCounter)
from .memory import (parameter_bytes, gpt_activation_bytes, training_memory_estimate, graph_activation_bytes,
                     PeakMemory, measure_training_memory)
from .recompute import recompute, recompute_blocks, accumulate_gradients, split_batch
from .quantize import (quantize_per_channel, dequantize, QuantizedLinear, QuantizedEmbedding, quantize_model,
                       model_size_bytes)
from .prune import Pruner, model_sparsity, head_importance
from .distill import distillation_loss
from .precision import DynamicLossScaler, MixedPrecision

__all__ = [
    "gpt_flops_per_token", "gpt_training_flops_per_step", "matmul_peak_flops", "mfu", "estimate_mfu",
    "transformer_model_training_flops_per_step", "transformer_model_flops_per_token", "FlopCounter",
    "parameter_bytes", "gpt_activation_bytes", "training_memory_estimate", "graph_activation_bytes", "PeakMemory",
    "measure_training_memory", "recompute", "recompute_blocks", "accumulate_gradients", "split_batch",
    "quantize_per_channel", "dequantize", "QuantizedLinear", "QuantizedEmbedding", "quantize_model",
    "model_size_bytes", "Pruner", "model_sparsity", "head_importance", "distillation_loss", "DynamicLossScaler",
    "MixedPrecision"
]
