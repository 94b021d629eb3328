"""purenn: neural networks as pure functions of their parameters.

The small library behind the Just After eXecution site. Every page of the site runs against
it, so what it shows is what this code does.

Example:
    >>> import purenn
    >>> purenn.timing.environment()["backend"] in {"cpu", "gpu", "tpu"}
    True
"""

from purenn import timing

__all__ = ["timing"]
__version__ = "0.1.0"
