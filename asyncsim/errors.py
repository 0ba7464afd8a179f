"""The one exception type asyncsim raises for bad input.

Every message names the offending value, the rule it breaks and, where there is one,
the fix: ``projection 'fc1': weight shape (10, 784) does not match source size 700``.
It subclasses :class:`ValueError` so generic ``except ValueError`` handlers keep working.
"""

from __future__ import annotations


class AsyncsimError(ValueError):
    """Invalid model, input or option. The message says what, why and how to fix it."""
