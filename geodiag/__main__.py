from geodiag.cli import main

raise SystemExit(main())
