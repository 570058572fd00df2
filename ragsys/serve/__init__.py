"""`ragsys serve`: an HTTP API and a web page over one index and one pipeline.

Example:
    >>> from ragsys.serve import ServeSettings, create_app
    >>> app = create_app(pipeline, index, store, ServeSettings(port=8000))  # doctest: +SKIP
"""

from ragsys.serve.app import create_app
from ragsys.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
