"""The audiosync command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="audiosync", description="How far apart two recordings of the same music are.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the main job on a built-in example")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from audiosync.demo import main as demo_main

        return demo_main()
    return 2


if __name__ == "__main__":
    sys.exit(main())
