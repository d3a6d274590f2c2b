"""`python -m monitor` runs the `codebook-monitor` command."""

from monitor.cli import main

raise SystemExit(main())
