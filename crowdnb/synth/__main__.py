"""``python -m crowdnb.synth``: the ``crowdnb synth`` command without the umbrella CLI."""

from __future__ import annotations

import argparse
import sys

from ..errors import CrowdnbError
from . import register_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crowdnb")
    sub = parser.add_subparsers(dest="command")
    register_cli(sub)
    args = parser.parse_args(["synth", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except CrowdnbError as exc:
        print(f"crowdnb synth: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
