"""Build the project elsewhere, as a stranger would: a git repository holding this working tree, clones of it in
other folders, and an interpreter at another path that still finds the dev lock's packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Fixed identity and dates: the same files always give the same commit id.
COMMIT_ENV = {
    "GIT_AUTHOR_NAME": "rampart-test",
    "GIT_AUTHOR_EMAIL": "rampart-test@example.invalid",
    "GIT_COMMITTER_NAME": "rampart-test",
    "GIT_COMMITTER_EMAIL": "rampart-test@example.invalid",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str, umask: int = 0o022) -> str:
    env = {**os.environ, **COMMIT_ENV, "HOME": str(cwd)}
    proc = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
        cwd=cwd, env=env, capture_output=True, text=True, check=True, umask=umask,
    )  # fmt: skip
    return proc.stdout.strip()


def snapshot_repo(destination: Path, source: Path = REPO) -> str:
    """A new repository at `destination` with one commit of the working tree (tracked and untracked, not
    ignored files, as they are on disk); returns the commit id."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    destination.mkdir(parents=True)
    for name in sorted(set(filter(None, listing.split("\0")))):
        path = source / name
        if not path.is_file():  # deleted in the working tree
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        if os.access(path, os.X_OK):
            target.chmod(0o755)
    git(destination, "init", "-q")
    git(destination, "add", "-A")
    git(destination, "commit", "-q", "--no-verify", "-m", "snapshot of the working tree")
    return git(destination, "rev-parse", "HEAD")


def clone(source: Path, destination: Path, *, umask: int = 0o022) -> Path:
    """`git clone` under the given umask (so the checked-out files get that umask's modes)."""
    git(source.parent, "clone", "-q", "--no-hardlinks", str(source), str(destination), umask=umask)
    return destination


def overlay_venv(destination: Path) -> Path:
    """A venv at `destination` (a different interpreter path) that imports the dev lock's packages from this
    interpreter's site-packages (a .pth line), without installing them again. Returns its python."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(destination)], check=True, capture_output=True)
    python = destination / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    Path(purelib, "rampart_dev_lock.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return python
