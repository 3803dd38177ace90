"""Evaluate shift stability of checkpoints: ``python evaluate.py runs/... --max-images 20``."""

import sys

from pix2pix_aa.evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
