"""`python -m cli.dicomscu`: the client."""

from cli.dicomscu import main

raise SystemExit(main())
