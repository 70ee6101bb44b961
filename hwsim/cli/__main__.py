"""`python -m hwsim.cli`: the `hwsim` command."""

import sys

from hwsim.cli.main import main

sys.exit(main())
