"""Where a run writes: a staging folder, a lock, an atomic publish and the clean-up after a crash.

A run is built in a hidden staging folder beside its target and swapped into place only when
complete, so a reader of the target always finds one whole run: the previous one or the new one.
The hidden names beside a target ``<name>``:

=========================  =====================================================================
``.<name>.partial``        the run being built (for an instant after a publish, the run it
                           replaced, which is then removed; a crash may leave either behind, and
                           the next run starts it afresh)
``.<name>.lock``           held (``flock``) by the process running into ``<name>``; the kernel
                           frees it when that process dies, however it dies
``.<name>.old-<pid>``      the replaced run, where the folders cannot be swapped in one step, for
                           the instant between the two renames of a publish; a crash there leaves
                           no ``<name>``, and the next run puts this folder back
``.personas-notebooks-*``  a CLI run's executed notebooks, moved into the run when it is done
=========================  =====================================================================

:func:`clean_up` removes what dead processes left; :class:`RunLock` keeps two runs out of one
folder; :func:`disk_full_error` turns "no space left on device" into one sentence naming the
folder and the space a run needs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import re
import shutil
import time
from pathlib import Path

from .errors import OutputError, RunBusyError

HELD_ENV = "PERSONAS_RUN_LOCK"  # the lock a parent process holds for this one (a CLI's kernel)
NOTEBOOKS_PREFIX = ".personas-notebooks-"
SPILL_PREFIX = "personas-duckdb-"  # DuckDB's spill folders: <temp_dir>/personas-duckdb-<pid>-*
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# a run folder: the report, notebooks and model (~2 MB) and ~300 bytes per user (features,
# assignments as Parquet and CSV), measured on the bundled sample's runs
FIXED_BYTES, BYTES_PER_USER = 2 << 20, 300


def stage_path(target: Path) -> Path:
    return target.parent / f".{target.name}.partial"


def lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


# -- the lock --------------------------------------------------------------------------------------

_held: set[str] = set()  # lock files this process holds


class RunLock:
    """An exclusive lock on running into ``target``, as a context manager.

    A second run into the same folder is refused at once with :class:`RunBusyError` (the CLI
    exits 75, "try again later"), naming the process that holds it. The lock file is removed
    when the lock is released, so a finished run leaves nothing behind; a run that dies leaves
    the file, which the next run simply locks again.
    """

    def __init__(self, target: Path):
        self.target = Path(target)
        self.path = lock_path(self.target)
        self._fd: int | None = None
        self._made_parent = False

    def __enter__(self) -> RunLock:
        if holds(self.target):  # this process or its parent has it: re-entry
            return self
        parent = self.path.parent
        if not parent.exists():
            try:
                parent.mkdir(parents=True)
            except OSError as exc:
                raise OutputError(
                    f"output folder {str(self.target)!r} cannot be written "
                    f"({exc.strerror}); set output_dir to a writable folder"
                ) from None
            self._made_parent = True
        while self._fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(
                    f"output folder {str(self.target)!r} cannot be written "
                    f"({exc.strerror}); set output_dir to a writable folder"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise RunBusyError(
                    f"another run ({holder}) is writing into "
                    f"{str(self.target)!r}; wait for it to finish, or give this "
                    "run another output folder"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
            else:  # the holder released (and removed) it as we opened it
                os.close(fd)
        os.ftruncate(self._fd, 0)
        os.write(
            self._fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}".encode()
        )
        _held.add(str(self.path))
        os.environ[HELD_ENV] = str(self.path)  # a notebook kernel started now inherits it
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is None:
            return
        _held.discard(str(self.path))
        if os.environ.get(HELD_ENV) == str(self.path):
            del os.environ[HELD_ENV]
        self.path.unlink(missing_ok=True)  # before unlocking: no one can lock a removed file
        os.close(self._fd)
        self._fd = None
        if self._made_parent:
            try:
                self.path.parent.rmdir()  # only if the run left it empty (it failed)
            except OSError:
                pass


def holds(target: Path) -> bool:
    """Whether this process, or the CLI process that started this kernel, holds the lock."""
    path = str(lock_path(Path(target)))
    return path in _held or os.environ.get(HELD_ENV) == path


# -- staging and publishing ----------------------------------------------------------------------


def fresh_stage(target: Path) -> Path:
    """An empty staging folder for a run into ``target``, after :func:`clean_up`.

    Refuses (:class:`RunBusyError`) while another process holds the target's lock: starting a
    stage would empty the folder that run is writing."""
    stage = stage_path(target)
    try:
        if holds(target):
            clean_up(target)
        else:
            with RunLock(target):
                clean_up(target)
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir(parents=True)
        probe = stage / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        if exc.errno in DISK_FULL:
            raise disk_full_error(exc, target) from None
        raise OutputError(
            f"output folder {str(target)!r} cannot be written "
            f"({exc.strerror}); set output_dir to a writable folder"
        ) from None
    return stage


def publish(stage: Path, target: Path) -> Path:
    """Put the finished ``stage`` folder in ``target``'s place in one step, then remove the run
    it replaced.

    On Linux the two folders are swapped by one ``renameat2(RENAME_EXCHANGE)``: the target is
    the old run or the new one at every instant. Elsewhere the old run is renamed aside first
    (``.<name>.old-<pid>``), and :func:`clean_up` puts it back if a crash came between.
    """
    with RunLock(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.replace(stage, target)
        elif _exchange(stage, target):
            shutil.rmtree(stage, ignore_errors=True)  # the replaced run
        else:
            backup = target.parent / f".{target.name}.old-{os.getpid()}"
            os.replace(target, backup)
            try:
                os.replace(stage, target)
            except OSError:
                os.replace(backup, target)
                raise
            shutil.rmtree(backup, ignore_errors=True)
    return target


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders atomically (Linux ``renameat2``); False where that is not available."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.ENOTSUP):
        return False  # this file system cannot: fall back to two renames
    raise OSError(code, os.strerror(code), str(b))


def _renameat2():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    function = getattr(ctypes.CDLL(name, use_errno=True), "renameat2", None)
    if function is not None:
        function.argtypes = [
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_uint,
        ]
    return function


def clean_up(target: Path) -> list[Path]:
    """Repair and remove what crashed runs into ``target`` left; returns what was removed.

    Called under the target's lock, so no live run owns these: a replaced run a crash left
    aside goes back to ``target`` when ``target`` is missing, and stale staging, replaced-run
    and notebook folders of dead processes are removed."""
    parent = target.parent
    if not parent.exists():
        return []
    backups = sorted(
        parent.glob(f".{glob_escape(target.name)}.old-*"), key=lambda p: p.stat().st_mtime
    )
    if backups and not target.exists():
        os.replace(backups.pop(), target)
    removed = []
    for path in backups + [stage_path(target)]:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    for path in parent.glob(f"{NOTEBOOKS_PREFIX}*"):
        found = re.match(re.escape(NOTEBOOKS_PREFIX) + r"(\d+)-", path.name)
        if found and not pid_alive(int(found.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def clean_spill_folders(temp_dir: Path) -> None:
    """Remove DuckDB's spill folders of processes that no longer run (killed runs)."""
    if not temp_dir.is_dir():
        return
    for path in temp_dir.glob(f"{SPILL_PREFIX}*"):
        found = re.match(re.escape(SPILL_PREFIX) + r"(\d+)-", path.name)
        if found and not pid_alive(int(found.group(1))):
            shutil.rmtree(path, ignore_errors=True)


# -- full disks ------------------------------------------------------------------------------------


def is_disk_full(exc: BaseException) -> bool:
    """An OSError for a full disk or quota, or a library's error whose text says so (DuckDB,
    pyarrow)."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL:
        return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text


def run_bytes(users: int) -> int:
    return FIXED_BYTES + BYTES_PER_USER * users


def disk_full_error(
    exc: BaseException, target: Path, users: int | None = None, temp_dir: str | Path | None = None
) -> OutputError:
    """One sentence for a full disk: the folder that filled, its free space, what the run needs
    there and which parameter moves it. A path in DuckDB's spill folders means the temporary
    folder filled, anything else the output folder."""
    written = getattr(exc, "filename", None) or _quoted_path(str(exc))
    if written and SPILL_PREFIX in written:
        return temp_full_error(Path(temp_dir) if temp_dir else Path(written).parent.parent)
    free = shutil.disk_usage(_existing(target.parent)).free
    need = _size(run_bytes(users)) if users else "a few MB plus 300 bytes per user"
    return OutputError(
        f"the disk holding the output folder {str(target)!r} is full "
        f"({_size(free)} free, and the run needs about {need} there); free some "
        "space, or set output_dir to a folder on another disk"
    )


def temp_full_error(temp_dir: Path) -> OutputError:
    free = shutil.disk_usage(_existing(temp_dir)).free
    return OutputError(
        f"the disk holding DuckDB's temporary folder {str(temp_dir)!r} is full "
        f"({_size(free)} free); set temp_dir to a folder on a disk with more "
        "room, or raise memory_limit so that less is spilled"
    )


def _quoted_path(text: str) -> str | None:
    found = re.search(r"[\"'](/[^\"']+)[\"']", text)
    return found.group(1) if found else None


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{max(n, 1) / 2**20:.0f} MB"
