"""Exports into a log dir other users share: nothing is written through their links or into their folders.

A second user (`OTHER_UID`, acting through `/bin/sh` started with that uid) plants links and folders in a
world-writable, sticky log dir (as /tmp), then this process (root, as the suite runs here and in CI) exports:
the export refuses with one line naming what was planted, or goes on without using it; either way the files the
links lead to stay as they were. Acting as another user needs root; the checks of links this user planted run
for any user.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time

import numpy as np
import pytest
from _projector_client import ProjectorClient

from projector_export import export_embeddings
from projector_export.metadata import ASSETS_DIRNAME

OTHER_UID = 54321
VICTIM_TEXT = "a file the other user wants overwritten\n"
as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="acting as a second user (a child started with another uid) needs root; "
           "the same-user link checks in this file still run")


def _arguments() -> dict:
    return {"embeddings": {"e": np.arange(12.0).reshape(6, 2)}, "metadata": list("abcdef"),
            "images": np.zeros((6, 2, 2), np.uint8)}


@pytest.fixture
def shared(tmp_path):
    """A world-writable sticky log dir (mode 1777, as /tmp) that the other user can reach, and a victim folder
    (reachable only by root) holding a file the planted links point at."""
    logdir = tempfile.mkdtemp(dir="/tmp", prefix="shared-logdir-")
    os.chmod(logdir, 0o1777)
    victims = tmp_path / "victims"
    victims.mkdir()
    (victims / "file").write_text(VICTIM_TEXT)
    yield logdir, victims
    shutil.rmtree(logdir)


def as_other_user(*commands: list[str]) -> None:
    """Runs the commands (argument lists) in one shell started as `OTHER_UID`."""
    script = " && ".join(" ".join(shlex.quote(a) for a in command) for command in commands)
    subprocess.run(["/bin/sh", "-c", script], user=OTHER_UID, group=OTHER_UID, extra_groups=[], cwd="/",
                   check=True, timeout=60)


def _untouched(victims) -> None:
    assert sorted(os.listdir(victims)) == ["file"] and (victims / "file").read_bytes() == VICTIM_TEXT.encode()


def _only_the_other_users(logdir: str) -> None:
    """Nothing in the log dir is this process's: the refused export wrote nothing."""
    for folder, dirs, files in os.walk(logdir):
        for name in dirs + files:
            assert os.lstat(os.path.join(folder, name)).st_uid == OTHER_UID, os.path.join(folder, name)


def _refused(logdir: str, run: str | None, planted: str) -> str:
    with pytest.raises(PermissionError) as caught:
        export_embeddings(logdir, run=run, **_arguments())
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"Refusing to write through {planted!r}: ")
    assert "Remove it, or export into another run or log dir" in message
    return message


@as_root
def test_a_run_directory_linked_elsewhere_is_refused(shared):
    logdir, victims = shared
    as_other_user(["ln", "-s", str(victims), f"{logdir}/r"])
    assert "it is a symbolic link" in _refused(logdir, "r", f"{logdir}/r")
    _untouched(victims)
    _only_the_other_users(logdir)


@as_root
def test_another_users_run_directory_with_planted_lock_and_config_links_is_refused(shared):
    """Before: the export wrote its config through the planted staged-config link and created the lock's target."""
    logdir, victims = shared
    assets = f"{logdir}/r/{ASSETS_DIRNAME}"
    as_other_user(["mkdir", "-p", assets],
                  ["ln", "-s", str(victims / "file"), f"{assets}/.tmp-staged-projector_config.pbtxt"],
                  ["ln", "-s", str(victims / "made-by-the-lock"), f"{assets}/.lock"])
    message = _refused(logdir, "r", f"{logdir}/r")
    assert "it is owned by" in message and f"uid {OTHER_UID}" in message
    _untouched(victims)
    _only_the_other_users(logdir)


@as_root
def test_a_plugins_folder_linked_elsewhere_is_refused(shared):
    logdir, victims = shared
    as_other_user(["ln", "-s", str(victims), f"{logdir}/plugins"])
    assert "it is a symbolic link" in _refused(logdir, None, f"{logdir}/plugins")
    _untouched(victims)
    _only_the_other_users(logdir)


@as_root
def test_a_state_file_linked_elsewhere_is_refused(shared):
    logdir, victims = shared
    as_other_user(["ln", "-s", str(victims / "file"), f"{logdir}/checkpoint"])
    _refused(logdir, None, f"{logdir}/checkpoint")
    _untouched(victims)
    _only_the_other_users(logdir)


@as_root
def test_links_at_the_old_staged_config_names_are_never_used(shared):
    """Before: the second export wrote the portable config's text into the file the link names."""
    logdir, victims = shared
    export_embeddings(logdir, **_arguments())
    as_other_user(["ln", "-s", str(victims / "file"), f"{logdir}/.tmp-staged-projector_config.pbtxt"])
    arguments = _arguments()
    export_embeddings(logdir, {"f": arguments.pop("embeddings")["e"] * 2}, **arguments)
    _untouched(victims)
    assert [e["tensorName"] for e in ProjectorClient(logdir).info(".")["embeddings"]] == ["e", "f"]


def _plant_links_at_the_next_event_file_names(logdir: str, target, *, writers: int) -> None:
    """As the other user, links to `target` at the names TensorFlow gives the event files of this process's next
    `writers` writers (`events.out.tfevents.<time>.<host>.<pid>.<n>.v2`) in the next 30 seconds."""
    import tensorflow as tf

    probe = tempfile.mkdtemp()
    tf.summary.create_file_writer(probe).close()  # the name of this process's next event file, but for the counter
    parts = os.listdir(probe)[0].split(".")  # the host name may hold dots
    host, pid, counter = ".".join(parts[4:-3]), parts[-3], parts[-2]
    shutil.rmtree(probe)
    names = [f"events.out.tfevents.{t}.{host}.{pid}.{int(counter) + i}.v2"
             for t in range(int(time.time()), int(time.time()) + 30) for i in range(1, writers + 1)]
    as_other_user(*(["ln", "-s", str(target), f"{logdir}/{name}"] for name in names))


@as_root
def test_links_at_the_event_file_names_tensorflow_would_use_are_not_written_through(shared):
    """TensorFlow opens `events.out.tfevents.<time>.<host>.<pid>.<n>.v2` following links; the other user plants
    links at the names of the next seconds, and a tensor wide enough for a PCA makes the export write its summary
    with a new writer. Before: the export wrote that event file into the victim."""
    logdir, victims = shared
    _plant_links_at_the_next_event_file_names(logdir, victims / "file", writers=3)
    try:
        export_embeddings(logdir, {"wide": np.random.default_rng(0).standard_normal((6, 300))})
        message = "exported: the event file was not at a planted name (predict the names better)"
    except PermissionError as error:
        message = str(error)
    _untouched(victims)
    assert "\n" not in message and "events.out.tfevents." in message and "already at the name" in message, message


@as_root
def test_links_at_the_names_a_training_writer_would_use_are_not_written_through(shared):
    """A user's `fit` whose snapshot callback writes its scalars into the shared log dir with a `tf.summary` writer
    that stays open: the other user plants links at the names TensorFlow would give its event file (time, host,
    process, counter). Before: the writer wrote its events into the victim."""
    import keras

    from projector_export import EmbeddingSnapshots

    logdir, victims = shared
    _plant_links_at_the_next_event_file_names(logdir, victims / "file", writers=6)
    x, y = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32), np.arange(8) % 2
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    try:
        model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[EmbeddingSnapshots(x, y, logdir, every=1)])
    finally:
        _untouched(victims)
    assert sorted(ProjectorClient(logdir).scalars(".")["separability/hidden"]) == [0, 1, 2]


@as_root
@pytest.mark.parametrize("planted", ["link", "folder"])
def test_a_logdir_another_user_made_in_a_shared_folder_is_refused(shared, planted):
    """The log dir's path is the caller's choice, but a link or folder another user put there is not."""
    logdir, victims = shared
    as_other_user(["ln", "-s", str(victims), f"{logdir}/logs"] if planted == "link" else ["mkdir", f"{logdir}/logs"])
    message = _refused(f"{logdir}/logs", "r", f"{logdir}/logs")
    assert "owned by" in message and f"uid {OTHER_UID}" in message
    _untouched(victims)
    _only_the_other_users(logdir)


def test_a_logdir_reached_through_the_users_own_link_is_used(tmp_path):
    (tmp_path / "disk").mkdir()
    (tmp_path / "logs").symlink_to(tmp_path / "disk")
    export_embeddings(tmp_path / "logs", run="r", **_arguments())
    assert [e["tensorName"] for e in ProjectorClient(tmp_path / "disk").info("r")["embeddings"]] == ["e"]


def test_a_lock_file_linked_elsewhere_is_refused(tmp_path):
    """Before: opening the lock followed the link and created its target (as root: anywhere)."""
    export_embeddings(tmp_path, run="r", **_arguments())
    lock = tmp_path / "r" / ASSETS_DIRNAME / ".lock"
    lock.unlink()
    lock.symlink_to(tmp_path / "made-by-the-lock")
    with pytest.raises(PermissionError, match=r"^Refusing to write through '.*/\.lock': it is a symbolic link"):
        export_embeddings(tmp_path, run="r", **_arguments())
    assert not (tmp_path / "made-by-the-lock").exists()


def test_a_run_directory_that_is_a_link_is_refused_before_anything_is_written(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "r").symlink_to(elsewhere)
    with pytest.raises(PermissionError, match=r"^Refusing to write through '.*/logs/r': it is a symbolic link"):
        export_embeddings(tmp_path / "logs", run="r", **_arguments())
    assert os.listdir(elsewhere) == []


def test_a_logdir_every_user_may_write_in_without_the_sticky_bit_is_refused(tmp_path):
    logdir = tmp_path / "logs"
    logdir.mkdir()
    logdir.chmod(0o777)
    with pytest.raises(PermissionError, match=r"writable by others, no sticky bit.*chmod o-w"):
        export_embeddings(logdir, run="r", **_arguments())
    assert os.listdir(logdir) == []
