import sys

from pipeline_code.local.cli import main

sys.exit(main())
