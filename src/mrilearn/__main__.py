import sys

from mrilearn.cli import main

sys.exit(main())
