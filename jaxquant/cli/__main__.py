"""``python -m jaxquant.cli``: the ``jaxquant`` command."""

from jaxquant.cli import console_main

console_main()
