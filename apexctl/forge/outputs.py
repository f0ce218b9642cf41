"""Where a command may write: one check of its output paths against what it reads, folders staged beside their final
place and published with one rename, and a lock so that two runs never write the same folder.

Rules (README "Outputs"): `-` is stdout and always allowed. A file output must not be a folder, a device or any other
non-regular file, and must not be (by path, symlink or hard link) one of the command's inputs. A folder output must
be new or empty unless the command replaces it (`--force`), and a folder that would be replaced must not hold an
input. The nearest existing folder above an output must be a writable folder. Everything is checked before any work
starts, so a bad `-o` costs nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from apexctl import signals
from apexctl.console import safe
from apexctl.errors import Busy, UsageError, first_line

STDIO = "-"
#: Prefix of the staging folders and of the lock files, next to the output they belong to (hidden, removed at exit).
STAGING = ".staging-"
LOCK = ".lock"


@functools.cache
def umask() -> int:
    """The process's file-creation mask (read once: reading it means setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@dataclass(frozen=True)
class OutFile:
    """A file the command writes (replaced when it exists); `option` names it in messages when `check`'s `option`
    does not (one check of several options: judge's -o and --report)."""

    path: str | Path
    option: str | None = None


@dataclass(frozen=True)
class OutFolder:
    """A folder the command writes as a whole; `replace` (--force) allows a non-empty one, `keep` means its other
    entries are carried over (evolve's run folder with its checkpoint) instead of replaced."""

    path: str | Path
    replace: bool = False
    keep: bool = False
    #: What the user may do about a non-empty folder, besides choosing another one.
    hint: str = "add --force"
    #: The option naming it in messages, when not `check`'s `option` (see OutFile).
    option: str | None = None


def written_path(path: str | Path) -> Path:
    """Where writing `path` lands: a symbolic link is written through to its target (as a shell's `>` does), so
    the rename that publishes an output replaces the target, not the link (`-o /dev/stdout` must not turn the
    system's link into a file; `-o runs/latest` keeps pointing where it pointed)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


#: The longest output file name taken: the temporary and staging names beside it add up to about 40 bytes, and
#: file systems stop at 255.
MAX_NAME_BYTES = 200


def resolved(path: str | Path, what: str) -> Path:
    """`path` with every symbolic link followed; UsageError naming `what` (an option, or "input") when the links
    loop, which Path.resolve reports as a bare RuntimeError."""
    try:
        return Path(path).resolve()
    except RuntimeError as exc:
        loop = f"a loop of symbolic links ({first_line(exc)})"
        raise UsageError(f"{what} {safe(path)}: {loop}; give a real path") from None


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _cwd() -> Path | None:
    """The current folder, resolved; None when it was deleted."""
    try:
        return Path.cwd().resolve()
    except FileNotFoundError:
        return None


def _writable_ancestor(path: Path, option: str) -> None:
    """The nearest existing folder above `path` must be a folder we may create entries in."""
    ancestor = path.parent
    while not ancestor.exists():
        if ancestor.is_symlink():  # a dangling symlink in the way: mkdir would fail on it
            raise UsageError(f"{option} {path}: {ancestor} is a broken symbolic link")
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{option} {path}: {ancestor} is not a folder")
    # Creating a file is the only sure test: access() says yes to root everywhere, and to anyone on /proc or /sys.
    try:
        with signals.deferred():  # the probe must not outlive an interrupt
            fd, probe = tempfile.mkstemp(prefix=".apexctl-probe-", dir=ancestor)
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        reason = "permission denied" if exc.errno in (errno.EACCES, errno.EPERM) else exc.strerror or str(exc)
        raise UsageError(f"{option} {path}: cannot create files in {ancestor} ({reason})") from None


def refuse_stdout(output: str | Path, option: str = "-o") -> None:
    """UsageError for `-` where files are written beside the output (a report, a log): stdout has no folder."""
    if str(output) == STDIO:
        raise UsageError(f"{option} must be a file path, not '-' (stdout): files are written beside it")


def _check_apart(outputs: Sequence[OutFile | OutFolder], option: str) -> None:
    """A folder cannot go to stdout, and no output may lie inside a folder output written as a whole: publishing
    the folder would replace it."""
    for output in outputs:
        if isinstance(output, OutFolder) and str(output.path) == STDIO:
            raise UsageError(
                f"{output.option or option} -: this output is a folder and cannot go to stdout; give a folder path"
            )
    folders = [o for o in outputs if isinstance(o, OutFolder) and not o.keep]
    for output in outputs:
        if str(output.path) == STDIO:
            continue
        real = resolved(output.path, output.option or option)
        outer = next(
            (f for f in folders if f is not output and _within(real, resolved(f.path, f.option or option))), None
        )
        if outer is not None:
            raise UsageError(
                f"{output.option or option} {output.path}: is inside {outer.path}, which is replaced as a whole when "
                "it is written; give a path outside it"
            )


def check(outputs: Sequence[OutFile | OutFolder], inputs: Sequence[str | Path | None], option: str = "-o") -> None:
    """Raises UsageError (one line naming the path) when an output cannot be written or would destroy an input.

    `inputs` are every file and folder the command reads (None and `-` are skipped); `option` names the output
    option in messages, unless an output carries its own.
    """
    sources = [Path(p) for p in inputs if p is not None and str(p) != STDIO]
    inputs_real = [resolved(p, "input") for p in sources]
    identities = {i for i in (_identity(p) for p in sources) if i is not None}
    _check_apart(outputs, option)
    for output in outputs:
        if str(output.path) == STDIO:
            continue
        name = output.option or option
        path = Path(output.path)
        real = resolved(path, name)
        if len(path.name.encode()) > MAX_NAME_BYTES:
            raise UsageError(
                f"{name} {safe(path.name[:40])}...: the name is {len(path.name.encode())} bytes long; keep it "
                f"under {MAX_NAME_BYTES} (temporary files beside it add to it, and file systems stop at 255)"
            )
        _writable_ancestor(written_path(path), name)
        if isinstance(output, OutFile):
            if str(output.path).endswith(os.sep) or path.is_dir():
                raise UsageError(f"{name} {path}: is a folder; give a file name")
            if path.exists() and not stat.S_ISREG(path.stat().st_mode):
                raise UsageError(
                    f"{name} {path}: exists and is not a regular file (a device or a pipe); give a file path, or "
                    "'-' where the command writes to stdout"
                )
            if real in inputs_real or (_identity(path) is not None and _identity(path) in identities):
                raise UsageError(f"{name} {path}: is also an input of this command; writing it would destroy it")
            continue
        if path.exists() and not path.is_dir():
            raise UsageError(f"{name} {path}: exists and is not a folder")
        cwd = _cwd()
        if cwd is not None and _within(cwd, real):
            # The folder is published by renaming a new one onto it: not possible for '.', and a surprise for the
            # shell sitting in the old one.
            raise UsageError(f"{name} {path}: is the current folder or holds it; give a new folder, e.g. {name} out")
        if path.is_dir() and not output.keep and any(path.iterdir()):
            if not output.replace:
                raise UsageError(f"{name} {path}: exists and is not empty; choose another folder or {output.hint}")
            held = next((s for s, r in zip(sources, inputs_real, strict=True) if _within(r, real)), None)
            if held is not None:
                raise UsageError(f"{name} {path}: holds the input {held}; replacing the folder would destroy it")
        elif any(_within(r, real) for r in inputs_real) and not output.keep:
            held = next(s for s, r in zip(sources, inputs_real, strict=True) if _within(r, real))
            raise UsageError(f"{name} {path}: is the input {held} or holds it; choose another folder")


# ---------------------------------------------------------------------------------------------------- the lock


@contextlib.contextmanager
def lock(out: Path, *, busy: bool = False) -> Iterator[None]:
    """Holds an exclusive lock on output folder `out` (a hidden `.NAME.lock` file beside it, removed at the end);
    a second run wanting the same folder stops at once with a UsageError instead of mixing its files in (with
    `busy`, a `Busy` error: exit 3, for commands run from cron that must tell "another run" from a mistake)."""
    out = written_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.parent / f".{out.name}{LOCK}"
    fd = None
    try:
        with signals.deferred():  # taken whole or not at all: an interrupt in between would leave the file
            while fd is None:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    fd = None
                    if busy:
                        raise Busy(f"{out}: another apexctl run holds its lock ({path}); did nothing") from None
                    raise UsageError(
                        f"{out}: another apexctl run is writing this folder; wait for it or choose another -o"
                    ) from None
                # The previous holder removes the file before letting go; a lock on that removed file is no lock.
                if _identity(path) != (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
                    os.close(fd)
                    fd = None
        yield
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                path.unlink()
            os.close(fd)


# ---------------------------------------------------------------------------------------------------- publishing

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swaps two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _carry(out: Path, staging: Path) -> None:
    """Hard-links every entry of `out` the staging folder does not replace into it (instant, no copy)."""
    for entry in out.iterdir():
        target = staging / entry.name
        if target.exists() or target.is_symlink():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, target, symlinks=True, copy_function=os.link)
        elif entry.is_symlink():
            os.symlink(os.readlink(entry), target)
        else:
            os.link(entry, target)


def publish(staging: Path, out: Path, *, replace: bool, keep: bool = False) -> None:
    """Puts the finished staging folder in place as `out` in one rename: onto a new or empty `out` directly, over a
    non-empty one (`replace`) by an atomic exchange, the old content then deleted. With `keep`, the old entries
    the staging folder does not replace are carried over first."""
    with signals.deferred():  # the swap is quick and must not stop half way (the old folder set aside, say)
        _publish(staging, out, replace, keep)


def _publish(staging: Path, out: Path, replace: bool, keep: bool) -> None:
    if keep and out.is_dir():
        _carry(out, staging)
    try:
        os.rename(staging, out)  # onto a missing or empty folder
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        if not replace:
            raise UsageError(
                f"{out}: another run wrote this folder while this one ran; choose another -o or add --force"
            ) from None
    if not _exchange(staging, out):
        # No atomic exchange here: move the old folder aside, put the new one in place, then delete the old one.
        aside = Path(tempfile.mkdtemp(prefix=f".{out.name}{STAGING}old-", dir=out.parent))
        os.replace(out, aside / out.name)
        os.rename(staging, out)
        shutil.rmtree(aside, ignore_errors=True)
        return
    shutil.rmtree(staging, ignore_errors=True)  # the exchange left the old folder under the staging name


@contextlib.contextmanager
def staged_folder(
    out: str | Path, *, replace: bool = False, keep: bool = False, locked: bool = False
) -> Iterator[Path]:
    """Yields an empty staging folder beside `out`; when the block ends normally it is published as `out` in one
    rename (see `publish`), when it raises (or the run is interrupted) it is removed, so `out` is all or nothing.

    The output folder is locked for the duration unless the caller already holds the lock (`locked`).
    """
    out = written_path(out)
    with contextlib.nullcontext() if locked else lock(out):
        if not replace and not keep and out.is_dir() and any(out.iterdir()):
            raise UsageError(f"{out}: exists and is not empty; choose another folder or add --force")
        staging = None
        try:
            with signals.deferred():  # an interrupt between creating the folder and knowing its name would leak it
                staging = Path(tempfile.mkdtemp(prefix=f".{out.name}{STAGING}", dir=out.parent))
            staging.chmod(0o777 & ~umask())  # mkdtemp makes it private; the output gets a plain mkdir's mode
            yield staging
            publish(staging, out, replace=replace, keep=keep)
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)


def report_beside(output: str | Path) -> str:
    """The report written next to a model or document: its suffix replaced by .report.json (model.pt ->
    model.report.json), as `train maml`, `train iel` and `chimera` name theirs. UsageError for `-`: stdout has no
    beside."""
    refuse_stdout(output)
    return str(Path(output).with_suffix(".report.json"))
