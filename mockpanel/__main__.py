"""`python -m mockpanel` runs the same command line as the `mockpanel` script."""

from .cli import main

raise SystemExit(main())
