"""A minimal Debian bookworm image with Python 3.11 for the container test, made with
debootstrap and buildah and cached: the root file system as a tar under
``~/.cache/driftloop/container/`` and the image in buildah's storage as `BASE_IMAGE`.

The Debian mirror is the one this machine's apt already uses (its sources files), so nothing
here names a host.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

BASE_IMAGE = "localhost/driftloop-test-base:bookworm-py311"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
CACHE = Path.home() / ".cache" / "driftloop" / "container"


def apt_mirror(etc: Path = Path("/etc/apt")) -> str | None:
    """The first Debian archive URI this machine's apt reads for a release (not its
    -security or -updates suites), from deb822 ``*.sources`` files or ``sources.list``.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "sources.list.d").mkdir()
    >>> _ = (folder / "sources.list.d" / "d.sources").write_text(
    ...     "Types: deb\\nURIs: http://mirror.invalid/debian\\nSuites: bookworm bookworm-updates\\n"
    ...     "\\nTypes: deb\\nURIs: http://mirror.invalid/security\\nSuites: bookworm-security\\n")
    >>> apt_mirror(folder)
    'http://mirror.invalid/debian'
    """
    entries: list[tuple[str, list[str]]] = []
    for path in sorted((etc / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, flags=re.M))
            if "deb" in fields.get("Types", "").split() and fields.get("URIs"):
                entries.append((fields["URIs"].split()[0], fields.get("Suites", "").split()))
    listed = etc / "sources.list"
    if listed.is_file():
        for line in listed.read_text().splitlines():
            parts = re.sub(r"\[[^]]*\]", "", line).split()
            if len(parts) >= 3 and parts[0] == "deb":
                entries.append((parts[1], [parts[2]]))
    for uri, suites in entries:
        if any("-" not in suite for suite in suites):
            return uri
    return None


def has_image(name: str) -> bool:
    return subprocess.run(["buildah", "inspect", "--type", "image", name],
                          capture_output=True, check=False).returncode == 0


def ensure_base(mirror: str) -> str:
    """`BASE_IMAGE`, built now unless buildah already has it (from the cached tar if there)."""
    if has_image(BASE_IMAGE):
        return BASE_IMAGE
    CACHE.mkdir(parents=True, exist_ok=True)
    tar = CACHE / f"bookworm-{'-'.join(PACKAGES)}.tar"
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        if not tar.is_file():
            root = Path(scratch) / "root"
            subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                 "bookworm", str(root), mirror], check=True, capture_output=True)
            shutil.rmtree(root / "var" / "cache" / "apt" / "archives", ignore_errors=True)
            partial = tar.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(root), "--exclude=./proc/*", "--exclude=./sys/*",
                            "--exclude=./dev/*", "-cf", str(partial), "."], check=True)
            partial.rename(tar)
        context = Path(scratch) / "context"
        context.mkdir()
        (context / "base.tar").hardlink_to(tar)
        (context / "Containerfile").write_text('FROM scratch\nADD base.tar /\nCMD ["python3"]\n')
        subprocess.run(["buildah", "bud", "--isolation", "chroot", "--quiet", "-t", BASE_IMAGE,
                        str(context)], check=True, capture_output=True)
    return BASE_IMAGE
