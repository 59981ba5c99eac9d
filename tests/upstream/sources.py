"""The upstream test suites, fetched and verified: exactly the version of each
library installed in the running environment, from the pins in
``requirements/upstream-sdists.txt``.

Two kinds of source:

``pypi``
    The release's sdist, which carries its tests (Django, aiosmtplib). Found
    through PyPI's simple API (``$UPSTREAM_INDEX_URL``, else
    ``https://pypi.org/simple``), downloaded once into the cache and checked
    against the pinned sha256 (and the index's own hash) before use.
``vendored``
    A tarball kept in ``tests/upstream/vendor/``, made with ``git archive``
    from the release's tag, for a library whose sdist leaves its tests out
    (django-anymail). Checked against the pinned sha256, and its extracted
    files against the git tree and blob ids of the tag, so anyone can check it
    against upstream with ``git rev-parse <tag>:tests``.

Everything is extracted into ``.cache/upstream/`` at the repository's root
(``$UPSTREAM_CACHE`` overrides it). Nothing is ever skipped: a missing pin, a
failed download or a wrong hash raises.

Maintenance, from the repository's root::

    python -m tests.upstream.sources fetch            # fetch and verify every pin
    python -m tests.upstream.sources pin django 5.2.20
        # the pin line for a new sdist (hash from the index, checked on download)
    python -m tests.upstream.sources vendor /path/to/django-anymail v15.2 django-anymail 15.2
        # git archive of the tag's tests into tests/upstream/vendor/, and its pin line
"""

from __future__ import annotations

import hashlib
import html.parser
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[2]
PINS = ROOT / "requirements" / "upstream-sdists.txt"
VENDOR = Path(__file__).resolve().parent / "vendor"
DEFAULT_INDEX = "https://pypi.org/simple"


class SourceError(RuntimeError):
    """A suite's sources could not be had, or are not what was pinned."""


@dataclass(frozen=True)
class Pin:
    distribution: str
    version: str
    kind: str  # "pypi" or "vendored"
    file: str  # the sdist's file name, or the tarball's path from the root
    sha256: str
    extra: Dict[str, str] = field(default_factory=dict)

    @property
    def tests_version(self) -> str:
        """The release the tests come from: the installed one, unless the pin
        says otherwise (``tests-of=``), which it must only do when that
        release's tests cannot be had."""
        return self.extra.get("tests-of", self.version)


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def read_pins(path: Path = PINS) -> List[Pin]:
    pins = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) < 5 or fields[2] not in ("pypi", "vendored"):
            raise SourceError(f"{path}:{number}: not 'distribution version kind file sha256'")
        extra = dict(item.split("=", 1) for item in fields[5:])
        pins.append(Pin(_canonical(fields[0]), fields[1], fields[2], fields[3], fields[4], extra))
    return pins


def pin_for(distribution: str, version: str) -> Pin:
    found = [
        p
        for p in read_pins()
        if p.distribution == _canonical(distribution) and p.version == version
    ]
    if not found:
        raise SourceError(
            f"{distribution} {version} is installed but {PINS.relative_to(ROOT)} pins no"
            f" upstream tests for it: add its line (python -m tests.upstream.sources pin"
            f" {distribution} {version})"
        )
    return found[0]


def installed_pin(distribution: str) -> Pin:
    """The pin for the version of ``distribution`` this environment has."""
    return pin_for(distribution, importlib.metadata.version(distribution))


def cache_dir() -> Path:
    return Path(os.environ.get("UPSTREAM_CACHE") or ROOT / ".cache" / "upstream")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- PyPI -------------------------------------------------------------------


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: List[str] = []

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        if tag == "a":
            self.links.extend(v for k, v in attrs if k == "href" and v)


def _get(url: str, accept: str) -> Tuple[bytes, str]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    error: Optional[BaseException] = None
    for attempt in range(4):
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.read(), response.headers.get("Content-Type", "")
        except OSError as exc:  # URLError, timeouts, resets: try again
            error = exc
            time.sleep(2**attempt)
    raise SourceError(f"could not get {url}: {error}") from error


def index_url() -> str:
    return (os.environ.get("UPSTREAM_INDEX_URL") or DEFAULT_INDEX).rstrip("/")


def find_on_index(distribution: str, filename: str) -> Tuple[str, Optional[str]]:
    """(download URL, the index's sha256 or None) of one file of a project,
    from the simple API: JSON (PEP 691) if the index speaks it, else HTML."""
    page = f"{index_url()}/{_canonical(distribution)}/"
    body, content_type = _get(page, "application/vnd.pypi.simple.v1+json, text/html;q=0.1")
    if "json" in content_type:
        for entry in json.loads(body)["files"]:
            if entry["filename"] == filename:
                url = urllib.parse.urljoin(page, entry["url"])
                return url, entry.get("hashes", {}).get("sha256")
    else:
        parser = _Links()
        parser.feed(body.decode("utf-8", "replace"))
        for link in parser.links:
            url = urllib.parse.urljoin(page, link)
            path, _, fragment = url.partition("#")
            if urllib.parse.unquote(path.rsplit("/", 1)[-1]) == filename:
                algorithm, _, value = fragment.partition("=")
                return path, value if algorithm == "sha256" else None
    raise SourceError(f"{filename} is not on {page}")


def download(pin: Pin) -> Path:
    """The pinned sdist, from the cache or the index, its sha256 checked."""
    target = cache_dir() / "sdists" / pin.file
    if target.exists():
        if sha256_of(target) == pin.sha256:
            return target
        target.unlink()  # a broken or foreign file: fetch it again
    url, index_sha256 = find_on_index(pin.distribution, pin.file)
    if index_sha256 is not None and index_sha256 != pin.sha256:
        raise SourceError(
            f"{index_url()} lists {pin.file} with sha256 {index_sha256}, pinned {pin.sha256}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as part:
        body, _ = _get(url, "*/*")
        part.write(body)
    got = sha256_of(Path(part.name))
    if got != pin.sha256:
        os.unlink(part.name)
        raise SourceError(f"{url}: sha256 {got}, pinned {pin.sha256}")
    os.replace(part.name, target)
    return target


# -- git ids of vendored trees ---------------------------------------------


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def git_tree_id(directory: Path) -> str:
    """The id git gives this directory's tree (files and executable bits)."""
    entries = []
    for child in directory.iterdir():
        if child.name == "__pycache__":  # bytecode a run left, never in git
            continue
        if child.is_symlink():
            raise SourceError(f"{child}: a symlink in a vendored tree")
        if child.is_dir():
            mode, name, oid = b"40000", child.name, git_tree_id(child)
        else:
            mode = b"100755" if os.access(child, os.X_OK) else b"100644"
            name, oid = child.name, git_blob_id(child.read_bytes())
        # git orders a tree's entries by name, a directory's name as if it ended in "/"
        key = name.encode() + (b"/" if mode == b"40000" else b"")
        entries.append((key, mode + b" " + name.encode() + b"\0" + bytes.fromhex(oid)))
    body = b"".join(entry for _, entry in sorted(entries))
    return hashlib.sha1(b"tree %d\0" % len(body) + body).hexdigest()


def check_git_ids(pin: Pin, top: Path) -> None:
    checked = 0
    for key, expected in pin.extra.items():
        kind, _, name = key.partition(":")
        if kind == "tree":
            got = git_tree_id(top / name)
        elif kind == "blob":
            got = git_blob_id((top / name).read_bytes())
        else:
            continue
        if got != expected:
            raise SourceError(f"{pin.file}: {name} is git {kind} {got}, pinned {expected}")
        checked += 1
    if not checked:
        raise SourceError(f"{pin.file}: the pin names no git tree or blob ids to check")


# -- extraction -------------------------------------------------------------


def _members(archive: tarfile.TarFile, wanted: Tuple[str, ...]) -> List[tarfile.TarInfo]:
    members = []
    for member in archive.getmembers():
        parts = member.name.split("/", 1)
        if len(parts) < 2 or not (member.isfile() or member.isdir()):
            continue
        rest = parts[1]
        if any(rest == w or rest.startswith(w.rstrip("/") + "/") for w in wanted):
            members.append(member)
    return members


def _extract(archive: tarfile.TarFile, members: List[tarfile.TarInfo], into: Path) -> None:
    if hasattr(tarfile, "data_filter"):  # 3.9.17+, 3.10.12+, 3.11.4+
        archive.extractall(into, members=members, filter="data")
    else:  # pragma: no cover - older patch releases
        for member in members:
            if member.name.startswith("/") or ".." in member.name.split("/"):
                raise SourceError(f"unsafe path in archive: {member.name}")
        archive.extractall(into, members=members)


# What each suite needs from its archive (paths below the archive's top dir).
WANTED = {
    "django": ("tests/", "LICENSE"),
    "aiosmtplib": ("tests/", "pyproject.toml", "LICENSE.txt"),
    "django-anymail": ("tests/", "runtests.py", "LICENSE"),
}


def prepare(pin: Pin) -> Path:
    """The verified, extracted sources of one pin: the directory holding the
    archive's top level (``tests/`` and whatever else WANTED lists)."""
    if pin.kind == "pypi":
        archive_path = download(pin)
    else:
        archive_path = ROOT / pin.file
        if not archive_path.is_file():
            raise SourceError(f"{pin.file} is pinned but missing")
        got = sha256_of(archive_path)
        if got != pin.sha256:
            raise SourceError(f"{pin.file}: sha256 {got}, pinned {pin.sha256}")
    target = cache_dir() / "src" / f"{pin.distribution}-{pin.tests_version}-{pin.sha256[:16]}"
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".extract-"))
    try:
        with tarfile.open(archive_path) as archive:
            members = _members(archive, WANTED[pin.distribution])
            tops = {m.name.split("/", 1)[0] for m in members}
            if len(tops) != 1 or not any(
                m.name.split("/", 1)[1].startswith("tests/") for m in members
            ):
                raise SourceError(f"{archive_path.name} holds no tests/ under one top directory")
            _extract(archive, members, scratch)
        top = scratch / tops.pop()
        if pin.kind == "vendored":
            check_git_ids(pin, top)
        (top / ".complete").write_text(f"{pin.file} {pin.sha256}\n")
        try:
            os.rename(top, target)
        except OSError:
            if not (target / ".complete").exists():  # not a concurrent extraction's
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


# -- maintenance CLI --------------------------------------------------------


def _cmd_fetch() -> None:
    for pin in read_pins():
        print(f"{pin.distribution} {pin.version}: {prepare(pin)}")


def _cmd_pin(distribution: str, version: str) -> None:
    """Print the pin line for an sdist on the index (its hash as the index
    lists it, then checked against the downloaded file)."""
    page = f"{index_url()}/{_canonical(distribution)}/"
    body, _ = _get(page, "application/vnd.pypi.simple.v1+json")
    for entry in json.loads(body)["files"]:
        name = entry["filename"]
        stem = name[: -len(".tar.gz")] if name.endswith(".tar.gz") else None
        if stem and _canonical(stem) == _canonical(f"{distribution}-{version}"):
            pin = Pin(_canonical(distribution), version, "pypi", name, entry["hashes"]["sha256"])
            src = prepare(pin)
            print(f"{pin.distribution} {version} pypi {name} {pin.sha256}   # {src}")
            return
    raise SourceError(f"no sdist of {distribution} {version} on {page}")


def _cmd_vendor(repository: str, tag: str, distribution: str, version: str) -> None:
    """git archive of a tag's tests, LICENSE and runtests.py into vendor/."""

    def git(*args: str) -> bytes:
        return subprocess.run(
            ["git", "-C", repository, *args], check=True, capture_output=True
        ).stdout

    commit = git("rev-parse", f"{tag}^{{commit}}").decode().strip()
    tests_version = tag.lstrip("v")
    name = f"{_canonical(distribution)}-{tests_version}-tests.tar.gz"
    paths = [p for p in WANTED[_canonical(distribution)] if p != "tests/"]
    tar = git(
        "-c",
        "tar.umask=0022",
        "archive",
        "--format=tar",
        f"--prefix={_canonical(distribution)}-{tests_version}/",
        tag,
        "tests",
        *paths,
    )
    VENDOR.mkdir(exist_ok=True)
    target = VENDOR / name
    target.write_bytes(
        subprocess.run(["gzip", "-n", "-9"], input=tar, check=True, capture_output=True).stdout
    )
    ids = [f"tree:tests={git('rev-parse', f'{tag}:tests').decode().strip()}"]
    ids += [f"blob:{p}={git('rev-parse', f'{tag}:{p}').decode().strip()}" for p in paths]
    extra = [f"tag={tag}", f"commit={commit}", *ids]
    if tests_version != version:
        extra.append(f"tests-of={tests_version}")
    print(
        f"{_canonical(distribution)} {version} vendored {target.relative_to(ROOT)}"
        f" {sha256_of(target)} {' '.join(extra)}"
    )


if __name__ == "__main__":
    command, *arguments = sys.argv[1:] or ["fetch"]
    {"fetch": _cmd_fetch, "pin": _cmd_pin, "vendor": _cmd_vendor}[command](*arguments)
