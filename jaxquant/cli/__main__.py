"""``python -m jaxquant.cli``: the ``jaxquant`` command."""

import sys

from jaxquant.cli import main

sys.exit(main())
