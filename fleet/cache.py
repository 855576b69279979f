"""The tagged cache, for applications around the fleet (infra/cache/ holds the library):

from fleet.cache import LocalTier, TaggedCache
"""

from infra.cache import LocalTier, TaggedCache

__all__ = ["LocalTier", "TaggedCache"]
