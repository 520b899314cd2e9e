"""`python -m callcontrol ...`: the `callcontrol` command, for the processes the daemon starts
(the recording worker) with the daemon's own Python."""

from callcontrol.cli import main

raise SystemExit(main())
