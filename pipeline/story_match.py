"""The story features and same-story decision under their first name: the code lives in
``newsmon.pipeline.story`` (split into modules for issue 13); this name stays so that the
store stage, the story index, the benches and stored references keep importing it."""

from newsmon.pipeline.story import *  # noqa: F403 (exactly the package's public names)
from newsmon.pipeline.story import __all__ as __all__
