"""``nvs train``: EDM training from hydra overrides, on one process or under torchrun.

nvs train model=tiny data=synthetic conditioning=plucker trainer.steps=100 trainer.out=runs/tiny
torchrun --nproc_per_node 2 -m nvs.commands.train model=small trainer.out=runs/small ...
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="nvs train",
        description="train the NVS model (EDM, V3D recipe) from configs/train.yaml",
        epilog="example: nvs train model=tiny data=synthetic conditioning=plucker trainer.steps=100 "
        "trainer.out=runs/tiny",
    )
    parser.add_argument("overrides", nargs="*", help="hydra overrides: group=option or key=value")
    parser.add_argument("--print-config", action="store_true", help="print the composed config and exit")
    args = parser.parse_args(argv)
    from omegaconf import OmegaConf

    from nvs.config import ConfigError, check_settings, compose, config_complete

    try:
        cfg = compose("train", args.overrides)
        if args.print_config:
            print(OmegaConf.to_yaml(cfg))
            return 0
        if not config_complete(cfg, "nvs train", "pass KEY=VALUE, e.g. trainer.out=runs/NAME"):
            return 2
        check_settings(cfg)
    except ConfigError as err:
        print(f"nvs train: error: {err}", file=sys.stderr)
        return 2
    from nvs.train.run import train_from_config

    terms = train_from_config(cfg)
    if terms and os.environ.get("RANK", "0") == "0":
        print("final: " + ", ".join(f"{k} {v:.4g}" for k, v in terms.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
