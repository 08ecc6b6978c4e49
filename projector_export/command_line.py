"""What every command of the project shares: input errors as one line on stderr, exit status 2, int flags.

`projector-export` (the library's command) and the training app's commands (`projector-train`,
`projector-export-model`, `projector-watch`) all parse with `OneLineParser`, so they report input errors alike.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from projector_export.validation import check_int

EXIT_INPUT_ERROR = 2
"""Exit status of every command of the project for an input error (argparse's own)."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage block), exit status `EXIT_INPUT_ERROR`."""

    def error(self, message: str):
        self.exit(EXIT_INPUT_ERROR, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")

    def fail(self, error: BaseException | str) -> int:
        """Prints an input error as one line on stderr and returns `EXIT_INPUT_ERROR`."""
        print(f"{self.prog}: error: {one_line(str(error))}", file=sys.stderr)
        return EXIT_INPUT_ERROR


def one_line(text: str) -> str:
    """`text` with every run of whitespace (line breaks too) as one space."""
    return " ".join(text.split())


def int_at_least(minimum: int, hint: str = "") -> Callable[[str], int]:
    """An argparse `type` for an int flag >= `minimum`, checked by `validation.check_int`.

    argparse names the flag: "projector-train: error: argument --seed: expected an int >= 0, received '-1'".
    """

    def parse(text: str) -> int:
        try:
            return check_int("value", int(text), minimum=minimum, hint=hint)
        except ValueError:
            expected = f"an int >= {minimum}" + (f" {hint}" if hint else "")
            raise argparse.ArgumentTypeError(f"expected {expected}, received {text!r}") from None

    parse.__name__ = f"int >= {minimum}"
    return parse
