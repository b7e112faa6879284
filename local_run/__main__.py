import sys

from local_run.cli import main

sys.exit(main())
