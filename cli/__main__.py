from shian.cli import main

raise SystemExit(main())
