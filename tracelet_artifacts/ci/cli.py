"""The ``tracelet-artifacts ci`` command group: CI artifacts from the command line.

The commands live in ``cli_files`` (``trend``, ``compare``: local files) and ``cli_providers`` (``runs``,
``ls``, ``get``, ``taskcluster-download``: talk to a CI system); this module only gathers them, so neither
imports it. Errors are reported by the shared handler (``tracelet_artifacts.cli_errors``).
"""

from __future__ import annotations

import click

from tracelet_artifacts.ci import cli_files, cli_providers
from tracelet_artifacts.cli_errors import TraceletGroup


@click.group(name="ci", cls=TraceletGroup)
def ci() -> None:
    """Read CI systems' artifacts back: list, fetch, trend and compare them."""


for _command in (cli_files.trend, cli_files.compare, cli_providers.runs, cli_providers.ls_command,
                 cli_providers.get, cli_providers.taskcluster_download):
    ci.add_command(_command)
