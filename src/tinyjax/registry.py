"""Which rules each primitive has: evaluation, jvp, batching, transposition and lowering.

Example:
    >>> from tinyjax.registry import rule_table
    >>> rule_table()["sin"]
    {'eval': True, 'jvp': True, 'batch': True, 'transpose': False, 'lowering': True}
"""

from __future__ import annotations

from tinyjax.batching import BATCH_RULES
from tinyjax.forward import JVP_RULES
from tinyjax.lowering import LOWERINGS
from tinyjax.primitives import PRIMITIVES
from tinyjax.reverse import TRANSPOSE_RULES


def rule_table() -> dict[str, dict[str, bool]]:
    """For every primitive, whether it has each kind of rule (transpose: linear ones only).

    Example:
        >>> from tinyjax.registry import rule_table
        >>> [name for name, rules in rule_table().items() if rules["transpose"]]
        ['add', 'mul', 'neg', 'select', 'reduce_sum', 'broadcast', 'transpose']
    """
    return {
        p.name: {
            "eval": callable(p.impl),
            "jvp": p in JVP_RULES,
            "batch": p in BATCH_RULES,
            "transpose": p in TRANSPOSE_RULES,
            "lowering": p in LOWERINGS,
        }
        for p in PRIMITIVES
    }
