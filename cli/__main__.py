"""`python -m cli` runs dicomscu."""

from cli.dicomscu import main

raise SystemExit(main())
