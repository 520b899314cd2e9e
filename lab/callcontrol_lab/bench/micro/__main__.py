"""The command: ``python -m callcontrol_lab.bench.micro`` (see the package's documentation)."""

import sys

from callcontrol_lab.bench.micro.cli import main

sys.exit(main())
