"""`python -m app [--index DIR] ...` is `fashion-retrieval serve`."""

import sys

from app.cli import main

sys.exit(main(sys.argv[1:]))
