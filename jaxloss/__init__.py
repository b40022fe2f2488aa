"""jaxloss: pure JAX losses, softmax, dropout, semi-supervised and clustering objectives,
metrics and gradient tools, under one weighting / masking / reduction contract.

Every public function is importable from the top level::

    import jaxloss as jl
    jl.softmax_cross_entropy_with_integer_labels(logits, labels, ignore_index=-1,
                                                 reduction="mean")

``import jaxloss as losses`` can replace ``optax.losses``: the same names, arguments, defaults
and results, plus the contract arguments (see :func:`jaxloss.reduce`).
"""

import importlib

from jaxloss._checks import *  # noqa: F403
from jaxloss._reduction import *  # noqa: F403
from jaxloss.activations import *  # noqa: F403
from jaxloss.classification import *  # noqa: F403
from jaxloss.clustering import *  # noqa: F403
from jaxloss.contrastive import *  # noqa: F403
from jaxloss.cost_sensitive import *  # noqa: F403
from jaxloss.distillation import *  # noqa: F403
from jaxloss.divergences import *  # noqa: F403
from jaxloss.dropout import *  # noqa: F403
from jaxloss.embedding import *  # noqa: F403
from jaxloss.focal import *  # noqa: F403
from jaxloss.generalized_dice import *  # noqa: F403
from jaxloss.gradients import *  # noqa: F403
from jaxloss.large_vocab import *  # noqa: F403
from jaxloss.lovasz import *  # noqa: F403
from jaxloss.margin import *  # noqa: F403
from jaxloss.metric_states import *  # noqa: F403
from jaxloss.metrics import *  # noqa: F403
from jaxloss.penalties import *  # noqa: F403
from jaxloss.ranking import *  # noqa: F403
from jaxloss.regression import *  # noqa: F403
from jaxloss.robust import *  # noqa: F403
from jaxloss.segmentation import *  # noqa: F403
from jaxloss.semi_supervised import *  # noqa: F403
from jaxloss.sequence import *  # noqa: F403
from jaxloss.sparse import *  # noqa: F403
from jaxloss.weighting import *  # noqa: F403

__version__ = "0.1.0"

# Modules whose ``__all__`` make up the flat public API (some share a name with a function,
# e.g. ``jaxloss.dropout``, so they are looked up by name rather than imported as attributes).
_MODULES = (
    "_checks",
    "_reduction",
    "activations",
    "classification",
    "clustering",
    "contrastive",
    "cost_sensitive",
    "distillation",
    "divergences",
    "dropout",
    "embedding",
    "focal",
    "generalized_dice",
    "gradients",
    "large_vocab",
    "lovasz",
    "margin",
    "metric_states",
    "metrics",
    "penalties",
    "ranking",
    "regression",
    "robust",
    "segmentation",
    "semi_supervised",
    "sequence",
    "sparse",
    "weighting",
)

__all__ = sorted(
    {name for module in _MODULES for name in importlib.import_module(f"jaxloss.{module}").__all__}
)


def _teach_keywords() -> None:
    """Unknown keywords (``weight=``, ``sample_weight=``, typos) raise a ``TypeError`` naming
    the fix, in every public function, under its module path and the flat one alike."""
    import inspect

    from jaxloss._checks import teach_keywords

    for module_name in _MODULES:
        module = importlib.import_module(f"jaxloss.{module_name}")
        for name in module.__all__:
            fn = getattr(module, name)
            if inspect.isfunction(fn) and not hasattr(fn, "__wrapped__"):
                taught = teach_keywords(fn)
                setattr(module, name, taught)
                globals()[name] = taught


_teach_keywords()
