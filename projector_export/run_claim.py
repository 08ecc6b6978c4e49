"""One training per run: a claim on the run directory, held while a training writes there.

A training (`projector-train`, or a user's `fit` with the library's writing callbacks) claims its run before it
writes anything there and holds the claim until it ends; a second training of the same run, in another process or
on another machine sharing the log dir, is refused with one line naming the first (`RunInUseError`: process, host,
start time). The claim is the file `<run>/.training.json`, which holds the training's identity and stays locked
(`flock`) for as long as the training runs: the kernel drops the lock when the process ends, however it ends, so a
killed training never leaves its run claimed, and the next training takes its file over. The file is created under
an unpredictable name, locked and filled, then linked to its name, which fails if another training got there
first: of two trainings started at the same instant, one holds the claim and the other is refused. Released, the
file is removed (so a finished run holds only what the training wrote). Its random `id` tells a sidecar that the
run it follows was replaced (`watch.py`).

Claims are per process: the callbacks of one training share the claim its first writer took (or the one
`projector-train` took before them). Without `fcntl` (Windows) nothing is claimed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import secrets
import shutil
import socket
import sys
import threading
import time

from projector_export import atomic, safe_paths
from projector_export.errors import RunInUseError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one training per run is then the user's job.
    fcntl = None

CLAIM_FILENAME = ".training.json"
"""The claim's file in the run directory (present while a training writes the run, or left by a killed one)."""
_ATTEMPTS = 20  # a claim that changes under us (released, taken over) is looked at again
_BUSY_LOOKS, _BUSY_PAUSE = 4, 0.05  # a locked claim is looked at this many times, seconds apart, before refusing
_lock = threading.Lock()
_claims: dict[str, _Held] = {}  # the real path of a run directory -> this process's claim on it


@dataclasses.dataclass(frozen=True)
class TrainingIdentity:
    """Who claimed a run: a random id, the process, its host and program, the start time (UTC)."""

    id: str
    pid: int
    host: str
    program: str
    started: str

    @classmethod
    def of_this_process(cls) -> TrainingIdentity:
        now = datetime.datetime.now(datetime.UTC)
        return cls(secrets.token_hex(8), os.getpid(), socket.gethostname(), os.path.basename(sys.argv[0] or "python"),
                   f"{now:%Y-%m-%d %H:%M:%S} UTC")

    def describe(self) -> str:
        return f"process {self.pid} ({self.program}) on host {self.host!r}, started {self.started}"


def training_identity(run_dir: str | os.PathLike) -> TrainingIdentity | None:
    """The identity in the run's claim (a training writing it now, or killed while it did); None without one."""
    with contextlib.suppress(OSError):
        text = safe_paths.read_file(os.path.join(os.fspath(run_dir), CLAIM_FILENAME))
        if text is not None:
            with contextlib.suppress(ValueError, TypeError):
                return TrainingIdentity(**json.loads(text))
    return None


class RunClaim:
    """This process's hold on a run (`claim_run`): its `run_dir` and the `identity` its claim file holds;
    `release()` lets go of it. A context manager."""

    def __init__(self, held: _Held):
        self._held: _Held | None = held
        self.run_dir, self.identity = held.run_dir, held.identity
        held.handles += 1

    @property
    def active(self) -> bool:
        """Whether this handle still holds the run."""
        return self._held is not None and not self._held.released

    def is_empty(self) -> bool:
        """Whether the run directory holds nothing but the claim."""
        return all(name == CLAIM_FILENAME for name in os.listdir(self.run_dir))

    def clear(self) -> None:
        """Deletes everything in the run directory but the claim (what `projector-train --overwrite` does)."""
        for name in os.listdir(self.run_dir):
            path = os.path.join(self.run_dir, name)
            if name == CLAIM_FILENAME:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)

    def release(self, *, every_holder: bool = False) -> None:
        """Lets go of this handle; the run is released when no handle of this process holds it, or at once with
        `every_holder` (the training is over, whatever its callbacks did)."""
        held, self._held = self._held, None
        if held is not None:
            with _lock:
                held.handles = 0 if every_holder else held.handles - 1
                if held.handles <= 0:
                    held.release()

    def __enter__(self) -> RunClaim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def claim_run(logdir: str | os.PathLike, run: str | None = None) -> RunClaim:
    """Claims the run `<logdir>/<run>` (`run` None: the log dir itself) for this process's training, making the
    folders that are missing (checked by `safe_paths`).

    Raises:
        RunInUseError: another process's training holds it.
        PermissionError: the run directory or the claim's name is a link, or another user's (`safe_paths`).
    """
    logdir = os.fspath(logdir)
    run_dir = logdir if run is None else os.path.join(logdir, run)
    with _lock:
        held = _claims.get(os.path.realpath(run_dir))
        if held is None or held.released:
            safe_paths.make_logdir(logdir)
            held = _Held.acquire(run_dir, make_folder=run is not None)
            _claims[os.path.realpath(run_dir)] = held
        return RunClaim(held)


def check_unclaimed(run_dir: str | os.PathLike) -> None:
    """Raises `RunInUseError` if another process's training holds `run_dir` now; writes nothing."""
    run_dir = os.fspath(run_dir)
    held = _claims.get(os.path.realpath(run_dir))
    if fcntl is None or (held is not None and not held.released):
        return
    try:
        fd = safe_paths.open_file(os.path.join(run_dir, CLAIM_FILENAME))
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _in_use(run_dir) from None
    finally:
        os.close(fd)  # also drops the lock just taken


class _Held:
    """A claim file this process holds locked (`fd`; None without `fcntl`), until `released`."""

    def __init__(self, run_dir: str, fd: int | None, identity: TrainingIdentity, made_folder: bool):
        self.run_dir, self.fd, self.identity, self.made_folder = run_dir, fd, identity, made_folder
        self.handles, self.released = 0, False

    @classmethod
    def acquire(cls, run_dir: str, *, make_folder: bool) -> _Held:
        identity = TrainingIdentity.of_this_process()
        made_folder, busy = make_folder and _make_folder(run_dir), 0
        if fcntl is None:
            return cls(run_dir, None, identity, made_folder)
        path = os.path.join(run_dir, CLAIM_FILENAME)
        for _ in range(_ATTEMPTS):
            made_folder = (make_folder and _make_folder(run_dir)) or made_folder
            try:
                fd = safe_paths.open_file(path, os.O_RDWR)
            except FileNotFoundError:
                with contextlib.suppress(FileNotFoundError):  # the run directory removed meanwhile: look again
                    fd = _publish(run_dir, identity, replace=False)  # None: another training was faster
                    if fd is not None:
                        return cls(run_dir, fd, identity, made_folder)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                busy += 1
                if busy < _BUSY_LOOKS or training_identity(run_dir) is None:  # a look by `check_unclaimed`, or
                    time.sleep(_BUSY_PAUSE)                                     # released meanwhile: look again
                    continue
                raise _in_use(run_dir) from None
            if not _same_file(fd, path):  # released or taken over before we locked it
                os.close(fd)
                continue
            try:  # left by a training that was killed: replaced by ours, under its lock
                return cls(run_dir, _publish(run_dir, identity, replace=True), identity, made_folder)
            finally:
                os.close(fd)
        raise _in_use(run_dir)

    def release(self) -> None:
        """Removes the claim file (under the lock, if it is still ours), then unlocks it; removes the run directory
        too if the claim made it and nothing was written there."""
        fd, self.fd, self.released = self.fd, None, True
        if fd is None:
            return
        path = os.path.join(self.run_dir, CLAIM_FILENAME)
        try:
            if _same_file(fd, path):
                os.unlink(path)
        finally:
            os.close(fd)
        if self.made_folder:
            with contextlib.suppress(OSError):
                os.rmdir(self.run_dir)


def _publish(folder: str, identity: TrainingIdentity, *, replace: bool) -> int | None:
    """Creates the claim file holding `identity`, locked: staged under a new name, locked, then moved to its name
    (`replace`: over the file there). Returns the locked file descriptor; None if a claim appeared meanwhile."""
    staged = atomic.stage(folder, CLAIM_FILENAME, json.dumps(dataclasses.asdict(identity)))
    try:
        fd = safe_paths.open_file(staged, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else knows its name yet
        try:
            if replace:
                os.replace(staged, os.path.join(folder, CLAIM_FILENAME))
            else:
                atomic.move_new(staged, os.path.join(folder, CLAIM_FILENAME))
        except BaseException:
            os.close(fd)
            raise
        return fd
    except FileExistsError:
        return None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)  # gone already once moved


def _make_folder(run_dir: str) -> bool:
    """Creates the run directory unless it exists, then checks it (`safe_paths`); returns whether it made it."""
    try:
        os.mkdir(run_dir, safe_paths.FOLDER_MODE)
        made = True
    except FileExistsError:
        made = False
    safe_paths.check_folder(run_dir)
    return made


def _same_file(fd: int, path: str) -> bool:
    try:
        named = os.lstat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)


def _in_use(run_dir: str) -> RunInUseError:
    holder = training_identity(run_dir)
    return RunInUseError(run_dir, holder.describe() if holder else "a process that holds its claim file's lock")
