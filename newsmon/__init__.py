"""newsmon: streaming news monitoring.

This package is the kernel both halves share and the operator layer above them:

* the kernel (``models``, ``config``, ``values``, ``urls``, ``html``, ``languages``, ``kafka``,
  ``logs``, ``metrics``, ``runlock``) imports neither half;
* ``newsmon.connectors`` (folder ``connectors/``) polls sources into Kafka and imports only the
  kernel;
* ``newsmon.pipeline`` (folder ``pipeline/``) is the Beam job and imports only the kernel;
* ``newsmon.ops`` (operator tools) and ``newsmon.cli`` (the ``newsmon`` command) sit above both.

The two halves keep their folders at the top of the repository; pyproject.toml maps them into
this package when it is installed, and the links newsmon/pipeline and newsmon/connectors do the
same for a checkout (``python -m newsmon.cli``, pytest, mypy and editors run from the root).
"""

#: The one version number (pyproject.toml reads it from here).
__version__ = "0.1.0"
