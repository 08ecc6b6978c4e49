"""Folders and files of a log dir that no other user can redirect, checked before anything is written there.

A log dir may be shared (a world-writable folder such as /tmp, or one a team writes into), and another user may
plant a symbolic link or a file of their own where an export writes, to make it write elsewhere (as root: anywhere).
The rule, for every folder an export writes in (the log dir, the run directory, the plugin-assets folders, staging
folders):

* it is a real folder, not a symbolic link (the log dir itself may be reached through a link that belongs to a
  trusted user, below: its path is the caller's choice);
* it belongs to a trusted user: this process's user, root, or the owner of the folder holding it (who can replace
  it anyway);
* other users cannot write in it, unless it has the sticky bit (as /tmp), which keeps them from renaming or deleting
  what is not theirs.

Once a folder passed, no other user can replace it or anything an export made in it, so checking it by path once is
enough. What stays open is a name nobody has used yet: files are created only under new unpredictable names,
exclusively and without following links (`atomic.py`), and TensorFlow writes only into staging folders of our own
(`make_staging_folder`). The files an export reads or replaces at fixed names (the state file, the configs, the lock)
must be regular files of a trusted user. Anything else is refused with one line (`PermissionError`) naming it and
the fix.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile

# Staging folders (fresh, private: mode 0700) start with this, so leftovers of a killed process can be recognised.
STAGING_PREFIX = ".staging-"
# Folders and files are created writable by their owner (and group, as the umask allows), never by other users;
# less the umask that is 0755 and 0644 under the usual 022, so a TensorBoard running as another user can read them.
FOLDER_MODE = 0o775
FILE_MODE = 0o664
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FIX = "Remove it, or export into another run or log dir."


def check_logdir_folder(logdir: str) -> None:
    """Checks the log dir (which must exist): the folder it leads to, and the link leading there if it is one."""
    link = os.lstat(logdir)
    if stat.S_ISLNK(link.st_mode):
        if _euid() >= 0:
            _check_owner(logdir, link, os.stat(os.path.dirname(os.path.abspath(logdir))), "a symbolic link ")
        real = os.path.realpath(logdir)
        _check_stat(logdir, os.stat(real), os.stat(os.path.dirname(real)), folder=True)
    else:
        check_folder(logdir)


def check_folder(path: str) -> None:
    """Checks that `path` is a folder an export may write in (see the module's rule); it must exist."""
    _check_stat(path, os.lstat(path), _parent_stat(path), folder=True)


def make_logdir(logdir: str) -> None:
    """Creates the log dir (and missing folders above it) unless it exists, then checks it."""
    if not os.path.lexists(logdir):
        with contextlib.suppress(FileExistsError):
            os.makedirs(logdir, mode=FOLDER_MODE)
    check_logdir_folder(logdir)


def make_folder(path: str) -> None:
    """Creates the folder `path` inside a checked folder unless it exists, then checks it (a link is refused)."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, FOLDER_MODE)
    check_folder(path)


def make_staging_folder(folder: str) -> str:
    """A new private folder (mode 0700, unpredictable name) inside `folder`, for TensorFlow to write into."""
    return tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder)


def check_file(path: str) -> bool:
    """Whether a file is at `path`; raises PermissionError unless it is a regular file of a trusted user."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    _check_stat(path, info, _parent_stat(path), folder=False)
    return True


def open_file(path: str, flags: int = os.O_RDONLY, mode: int = FILE_MODE) -> int:
    """Opens `path` (with `flags`, e.g. `O_RDWR | O_CREAT`) without following a link or blocking on a pipe; the file
    must then be what `check_file` accepts. Returns the file descriptor."""
    extra = _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | extra, mode)
    except OSError as error:
        if error.errno == errno.ELOOP:
            check_file(path)  # raises, naming the link
        raise
    try:
        _check_stat(path, os.fstat(fd), _parent_stat(path), folder=False)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_file(path: str) -> bytes | None:
    """The bytes of the file at `path` (None when there is none), opened by `open_file`."""
    try:
        fd = open_file(path)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read()


def is_own(path: str, kind: str) -> bool:
    """Whether `path` is a regular file (`kind` "file") or a folder ("folder"), not a link, of this process's user:
    only such leftovers are deleted."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    is_kind = stat.S_ISREG(info.st_mode) if kind == "file" else stat.S_ISDIR(info.st_mode)
    return is_kind and info.st_uid == _euid()


def refuse(path: str, problem: str, fix: str = _FIX) -> PermissionError:
    """The one-line error for something an export will not write through or into."""
    return PermissionError(f"Refusing to write through {path!r}: {problem}. {fix}")


def _check_stat(path: str, info: os.stat_result, parent: os.stat_result, *, folder: bool) -> None:
    """Checks the `lstat` of a folder (`folder`) or a file an export writes in or uses, and of the folder holding it."""
    if stat.S_ISLNK(info.st_mode):
        raise refuse(path, f"it is a symbolic link (to {os.readlink(path)!r}), and an export never writes through "
                           "one inside a log dir: another user may have planted it to redirect what is written")
    if not (stat.S_ISDIR if folder else stat.S_ISREG)(info.st_mode):
        raise refuse(path, "it is not a folder" if folder else "it is not a regular file")
    if _euid() < 0:  # Windows: no owners or permission bits to compare
        return
    _check_owner(path, info, parent, "")
    if folder and info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
        raise refuse(path, "every user may rename or replace what is in it (writable by others, no sticky bit)",
                     f"Run `chmod o-w` or `chmod +t` (as /tmp) on {path!r}, or export into another log dir.")
    if not folder and info.st_nlink > 1 and parent.st_mode & stat.S_IWOTH:
        raise refuse(path, "it has other names (hard links) in a folder every user may write in: another user may "
                           "have linked someone else's file there")


def _check_owner(path: str, info: os.stat_result, parent: os.stat_result, what: str) -> None:
    if info.st_uid not in {_euid(), 0, parent.st_uid}:
        raise refuse(path, f"it is {what}owned by {_user(info.st_uid)}, not by you, root or the owner of the folder "
                           "holding it, so that user could redirect what is written there")


def _parent_stat(path: str) -> os.stat_result:
    return os.stat(os.path.dirname(os.path.abspath(path)))


def _euid() -> int:
    return os.geteuid() if hasattr(os, "geteuid") else -1  # Windows: no owners to compare


def _user(uid: int) -> str:
    try:
        import pwd

        return f"user {pwd.getpwuid(uid).pw_name!r} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"
