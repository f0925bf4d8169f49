"""`python -m streamlearn` runs the command line."""

import sys

from streamlearn.commands.cli import main

sys.exit(main())
