"""``python -m trustwire``: the same as the ``trustwire`` command."""

from trustwire.cli.main import run

run()
