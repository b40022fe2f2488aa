"""jaxloss: pure JAX losses, softmax, dropout, semi-supervised and clustering objectives,
metrics and gradient tools, under one weighting / masking / reduction contract.

Every public function is importable from the top level::

    import jaxloss as jl
    jl.softmax_cross_entropy_with_integer_labels(logits, labels, ignore_index=-1,
                                                 reduction="mean")

``import jaxloss as losses`` can replace ``optax.losses``: the same names, arguments, defaults
and results, plus the contract arguments (see :func:`jaxloss.reduce`).
"""

from jaxloss import _checks, _reduction, activations, classification
from jaxloss._checks import *  # noqa: F403
from jaxloss._reduction import *  # noqa: F403
from jaxloss.activations import *  # noqa: F403
from jaxloss.classification import *  # noqa: F403

__version__ = "0.1.0"

_MODULES = [_checks, _reduction, activations, classification]

__all__ = sorted({name for module in _MODULES for name in module.__all__})
