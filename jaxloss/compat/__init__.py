"""Signature-compatible namespaces for users coming from other libraries.

* :mod:`jaxloss.compat.torch` — the loss functions of ``torch.nn.functional`` with PyTorch's
  argument names, defaults (``reduction="mean"``, ``ignore_index=-100``, class axis 1) and
  results, each a thin call into the jaxloss function that owns the math.
"""
