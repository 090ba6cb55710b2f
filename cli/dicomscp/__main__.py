"""`python -m cli.dicomscp`: the server."""

from cli.dicomscp import main

raise SystemExit(main())
