"""What models cost and how to cut it: FLOPs and memory accounting (more to come)."""
from .flops import gpt_flops_per_token, gpt_training_flops_per_step, matmul_peak_flops

__all__ = ["gpt_flops_per_token", "gpt_training_flops_per_step", "matmul_peak_flops"]
