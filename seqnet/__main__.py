"""``python -m seqnet``: the same as the ``seqnet`` command."""

import sys

from seqnet.cli import main

sys.exit(main())
