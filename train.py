"""Train / validate / test / predict pix2pix models: ``python train.py fit --config configs/cpu_quick.yaml``."""

from pix2pix_aa.cli import main

if __name__ == "__main__":
    main()
