"""``python -m scaling_repro`` is the ``scaling-repro`` command."""

import sys

from scaling_repro.cli import main

sys.exit(main())
