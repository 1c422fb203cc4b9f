"""The KV cache's name on each side of transformers 5.24, which renamed ``past_key_values`` to ``cache``.

The model takes either name and answers in the name the installed transformers uses, so one checkpoint's
code runs on both sides of the rename.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from transformers.cache_utils import Cache
from transformers.modeling_outputs import BaseModelOutputWithPast
from transformers.utils.deprecation import deprecate_kwarg

# transformers 5.24 renamed the KV cache argument and output field ``past_key_values`` -> ``cache``
# (generate() passes ``cache=``, outputs carry ``.cache``). The model takes either name and answers
# in the name the installed transformers uses, so one checkpoint's code runs on both sides of it.
CACHE_FIELD = "cache" if "cache" in BaseModelOutputWithPast.__dataclass_fields__ else "past_key_values"


def _one_cache(cache: Cache | None, past_key_values: Cache | None) -> Cache | None:
    """The cache given under either name; both at once is ambiguous."""
    if cache is not None and past_key_values is not None:
        raise ValueError("Pass the KV cache once: as `cache` (transformers >= 5.24) or `past_key_values`, not both.")
    return cache if cache is not None else past_key_values


def cache_argument(forward: Callable) -> Callable:
    """Take the cache under either name, as transformers' in-tree models do on each side of 5.24.

    From 5.24 on, ``past_key_values=`` is deprecated: in-tree models decorate ``forward`` with
    ``deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")`` (a FutureWarning, then the value
    passed on as ``cache``), and so does this. Before 5.24 it is the current name: no warning. Both
    names given at once remain an error here, where the decorator would warn and drop one.
    """
    if CACHE_FIELD != "cache":
        return forward
    renamed = deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")(forward)

    @functools.wraps(forward)
    def wrapper(*args, **kwargs):
        _one_cache(kwargs.get("cache"), kwargs.get("past_key_values"))
        return renamed(*args, **kwargs)

    return wrapper
