"""Lessons and experiments: what the chapters and ``python -m tinyllm compress`` run on top of
the library, kept apart from it.

* ``tinytales.py``       the story grammar that writes the shipped corpus (data/tinytales.txt)
* ``bias.py``            a skewed toy corpus, a bias score, counterfactual data augmentation
* ``regularization.py``  weight decay, dropout, label smoothing against the train/val gap
* ``compression.py``     a student trained alone and distilled; loss against sparsity; heads
                         removed in order of importance

Each is built from the library's public pieces (the trainer's loop, :mod:`tinyllm.compress`'s
tools); nothing in the library imports this package.
"""
