"""`python -m worldland_node …` is `worldland-node …`."""

import sys

from worldland_node.cli import main

sys.exit(main())
