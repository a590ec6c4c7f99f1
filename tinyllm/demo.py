"""The README's first screen: a small graph, its backward, numbers you can check.

Run ``python -m tinyllm demo``; the README shows the same lines in PyTorch beside it.
"""

import tinyllm as tl
import tinyllm.functional as F


def run():
    x = tl.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    w = tl.Tensor([[0.5, -1.0], [1.5, 2.0]], requires_grad=True)
    h = F.gelu(x @ w)                                   # (2, 2)
    p = F.softmax(h, axis=-1)                           # rows sum to 1
    loss = F.cross_entropy(h, tl.Tensor([1, 0]))        # -log p[0,1] - log p[1,0], averaged
    loss.backward()
    print("h      =", h)
    print("p      =", p)
    print("loss   =", loss)
    print("x.grad =", tl.Tensor(x.grad))
    print("w.grad =", tl.Tensor(w.grad))
    print("\nEvery gradient above was computed by a hand-written backward; "
          "`python -m pytest` checks each against finite differences and PyTorch.")


if __name__ == "__main__":
    run()
