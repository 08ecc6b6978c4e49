"""What every command of the project shares: input errors as one line on stderr, exit status 2, int flags, and
Ctrl-C or SIGTERM as one line, exit status 128 + the signal's number.

`projector-export` (the library's command) and the training app's commands (`projector-train`,
`projector-export-model`, `projector-watch`) all parse with `OneLineParser`, so they report input errors alike.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator

from projector_export.validation import check_int

EXIT_INPUT_ERROR = 2
"""Exit status of every command of the project for an input error (argparse's own)."""
EXIT_FAILURE = 1
"""Exit status of a command that failed while it worked (a full disk, say)."""
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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


class Stopped(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM, raised in the main thread by `stop_on_signals` so that every clean-up runs."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        """128 + the signal's number, as a shell reports a command a signal ended (130, 143)."""
        return 128 + self.signum

    @property
    def what(self) -> str:
        return "Ctrl-C (SIGINT)" if self.signum == signal.SIGINT else signal.Signals(self.signum).name


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block (in the main thread), the first SIGINT or SIGTERM raises `Stopped`, as Ctrl-C raises
    KeyboardInterrupt, so the exporter removes an export it cut short and locks and claims are released; a second
    one ends the process at once (what it leaves is still a complete old or new export)."""

    def stop(signum, frame):
        for number in _STOP_SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        raise Stopped(signum)

    previous = {number: signal.signal(number, stop) for number in _STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
