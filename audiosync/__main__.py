import sys

from audiosync.cli import main

sys.exit(main())
