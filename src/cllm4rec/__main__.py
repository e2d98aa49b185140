"""``python -m cllm4rec`` runs the CLI."""

import sys

from cllm4rec.cli.main import main

sys.exit(main())
