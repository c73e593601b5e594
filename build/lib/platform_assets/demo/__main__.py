"""`python -m platform_assets.demo` runs the demo."""

from platform_assets.demo.main import main

raise SystemExit(main())
