"""The ``crowdnb`` command line.

Each subcommand lives beside the code it runs: a module listed in
``_SUBCOMMANDS`` defines ``register_cli(subparsers)``, which adds its parser
and sets ``func`` to a function taking the parsed arguments and returning an
exit status. Modules are imported only when their subcommand is used, so
``crowdnb --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from .errors import CrowdnbError

# subcommand name -> (module, one-line help)
_SUBCOMMANDS = {
    "synth": ("crowdnb.synth", "render the synthetic crowd corpus (the embedded default)"),
    "collect": ("crowdnb.sources", "collect labelled clips from a source into a collection"),
    "preprocess": ("crowdnb.dataset", "cut clips into blocks and render spectrogram images"),
    "predict": ("crowdnb.predict", "label the 2 s blocks of audio files with a trained model"),
    "listen": ("crowdnb.listen", "label a stream (file, standard input, microphone) as it arrives"),
    "run": ("crowdnb.workflow.run", "run the study's stale stages (Snakemake) into a run directory"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the full sub-parser of ``command`` only (others are listed)."""
    parser = argparse.ArgumentParser(
        prog="crowdnb",
        description="Crowd-emotion recognition from crowd sound by visual transfer learning.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in _SUBCOMMANDS.items():
        if name == command:
            importlib.import_module(module_name).register_cli(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _stdout_closed() -> bool:
    """True when standard output's reader has gone (``crowdnb predict ... | head -1``).

    Standard output is then pointed at ``/dev/null``, so that the interpreter's
    last flush at exit does not print a second traceback.
    """
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    except (OSError, ValueError):
        return False
    else:  # flushed: is the pipe's reader gone all the same?
        import select

        try:
            poller = select.poll()
            poller.register(sys.stdout.fileno(), select.POLLOUT)
            if not any(events & select.POLLERR for _, events in poller.poll(0)):
                return False
        except (OSError, ValueError, AttributeError):
            return False
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return True


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args, extra = parser.parse_known_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if getattr(args, "accepts_extra", False):
            status = int(args.func(args, extra) or 0)
        else:
            status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        return 128 + signal.SIGPIPE  # as a Unix tool killed by SIGPIPE
    except CrowdnbError as exc:
        print(f"crowdnb {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"crowdnb {args.command}: interrupted; what finished is kept, rerun to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
