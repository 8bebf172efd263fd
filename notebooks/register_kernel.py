"""Register the Jupyter kernel the notebooks name: "lakehouse-ml", this interpreter (the project's .venv).

A standard Jupyter (JupyterLab, VS Code, `jupyter notebook` from any environment) lists the kernels in its
kernel folders; the notebooks' metadata asks for `lakehouse-ml`, so without this registration they open with no
kernel or with one that cannot import the project. Run it with the environment's Python (`make` does, in its
set-up step):

    .venv/bin/python notebooks/register_kernel.py            # ~/.local/share/jupyter/kernels/lakehouse-ml
    .venv/bin/python notebooks/register_kernel.py --sys-prefix   # .venv/share/jupyter/kernels (this env's Jupyter only)

Idempotent: a second run rewrites the same spec. The spec starts `sys.executable` (the venv's `python`, not the
file it links to, so the venv's packages are the ones imported).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ipykernel.kernelspec import install

KERNEL_NAME = "lakehouse-ml"
DISPLAY_NAME = "Python (lakehouse-ml)"

log = logging.getLogger(__name__)


def register(*, user: bool = True, prefix: str | None = None) -> Path:
    """Write the kernel spec for this interpreter and return its folder.

    Args:
        user: install into the user's Jupyter data folder (what every Jupyter on this machine reads).
        prefix: install under `<prefix>/share/jupyter/kernels` instead (e.g. `sys.prefix`); wins over `user`.
    """
    path = Path(
        install(
            user=user and prefix is None,
            prefix=prefix,
            kernel_name=KERNEL_NAME,
            display_name=DISPLAY_NAME,
        )
    )
    argv = json.loads((path / "kernel.json").read_text())["argv"]
    log.info("registered kernel %r at %s, starting %s", KERNEL_NAME, path, argv[0])
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--sys-prefix", action="store_true", help="install into this environment, not the user's")
    where.add_argument("--prefix", help="install under PREFIX/share/jupyter/kernels")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    prefix = sys.prefix if args.sys_prefix else args.prefix
    register(user=prefix is None, prefix=prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
