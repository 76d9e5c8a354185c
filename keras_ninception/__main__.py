"""`python -m keras_ninception ...` is the `ninception` command."""

import sys

from keras_ninception.cli.main import main

sys.exit(main())
