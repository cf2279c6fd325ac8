"""The exit codes of every `fashion-retrieval` command, and the line `--help` shows."""

from __future__ import annotations

OK = 0
ERROR = 1  # a runtime error: one line on stderr, "error: ...", no traceback
USAGE = 2  # bad options (argparse prints the usage) or a bad setting
INTERRUPTED = 130  # Ctrl+C, as shells report SIGINT


def exit_codes_help(errors: str) -> str:
    """The `--help` epilog line; `errors` names the command's runtime errors."""
    return (
        f"exit codes: 0 done; 1 error ({errors}: one line on stderr);\n"
        "  2 usage error (bad options: usage on stderr); 130 interrupted (Ctrl+C)"
    )
