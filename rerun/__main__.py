import sys

from rerun.cli import main

sys.exit(main())
