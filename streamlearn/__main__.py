"""`python -m streamlearn` runs the command line."""

import sys

from streamlearn.cli import main

sys.exit(main())
