"""`FileSource`: CSV and Parquet files matched by a glob, local or on any fsspec filesystem.

Built by `base.build_source` from a `core.config.FileSourceSpec`; polled by the controller.
Each file is one batch, named by the sha256 of its bytes. The cursor remembers, per file, the
fingerprint it was read with and what the listing said of it then (size and modification time
or ETag), so a poll reads only files that are new or listed differently, and turns a file
into a batch again only if its content changed. A file that cannot be read is still a batch
(frame None, `error` says why): one bad file never stops the others.

A quarantine reason names a row of a CSV file by its line, the header being line 1, so the user
finds it in an editor or spreadsheet (`row_names`); a Parquet file has no lines, and a CSV file
whose lines are not one record each (blank lines, fields holding line breaks) or that is
compressed is not checked line by line: their rows are counted from 1.

Files whose name starts with ``.`` are skipped: writers often write ``.name.tmp`` and rename it
into place when complete.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from driftloop.core import config, errors
from driftloop.core.types import JSON
from driftloop.data import row_names as row_names_
from driftloop.data.sources import base

if TYPE_CHECKING:  # imported to read a file, not to list the new ones
    import pandas as pd

Format = Literal["csv", "parquet", "auto"]

_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz", ".zst": "zstd"}
_CSV_SUFFIXES = {".csv", ".txt"}
_PARQUET_SUFFIXES = {".parquet", ".pq", ".parq"}


class FileSource(base.Source):
    """Files matching `path` (a glob, folder, or fsspec URL); relative paths are under `base_dir`.

    >>> FileSource("in/*.csv", base_dir="/srv/pipe").location
    '/srv/pipe/in/*.csv'
    >>> FileSource("s3://bucket/in/*.parquet").location
    's3://bucket/in/*.parquet'
    """

    kind: ClassVar[str] = "files"

    def __init__(
        self,
        path: str,
        format: Format = "auto",
        base_dir: str | Path = ".",
        options: dict[str, Any] | None = None,
    ) -> None:
        if format not in ("csv", "parquet", "auto"):
            raise errors.ConfigError(
                f"`format` of FileSource must be csv, parquet or auto; got {format!r}"
            )
        self.path = path
        self.format = format
        self.base_dir = base_dir
        self.options = dict(options or {})

    def __repr__(self) -> str:  # options may hold credentials: only their names are shown
        shown = f", options=[{', '.join(sorted(self.options))}]" if self.options else ""
        return (
            f"FileSource(path={self.path!r}, format={self.format!r}, "
            f"base_dir={str(self.base_dir)!r}{shown})"
        )

    @classmethod
    def from_spec(cls, spec: config.FileSourceSpec, base_dir: Path) -> FileSource:
        return cls(spec.path, format=spec.format, base_dir=str(base_dir), options=spec.options)

    @property
    def location(self) -> str:
        """`path` with a relative local path resolved against `base_dir`."""
        if "://" in self.path or "::" in self.path or Path(self.path).is_absolute():
            return self.path
        return str(Path(self.base_dir) / self.path)

    @property
    def key(self) -> str:
        return f"files:{self.location}"

    def poll(self, cursor: JSON | None) -> Iterator[base.RawBatch]:
        """Yield new or changed files in sorted path order. Cursor: ``{"seen": {path: sha},
        "listed": {path: signature}}``; a file listed with the signature (size and modification
        time or ETag) it had when it was read is not read again."""
        seen: dict[str, str] = dict((cursor or {}).get("seen", {}))
        listed: dict[str, str] = dict((cursor or {}).get("listed", {}))
        fs, files = self._list()
        for path, info in files:
            signature = _signature(info)
            if path in seen and signature is not None and listed.get(path) == signature:
                continue
            uri = fs.unstrip_protocol(path)
            try:
                data = fs.cat_file(path)
            except FileNotFoundError:
                continue  # removed between listing and reading; the next poll will know
            except OSError as exc:
                raise errors.TemporaryError(
                    f"cannot read {uri}: {exc}; will retry", delay=30.0, source=self.key
                ) from exc
            sha = hashlib.sha256(data).hexdigest()
            if signature is not None:
                listed[path] = signature
            if seen.get(path) == sha:
                continue
            seen[path] = sha
            frame, error = read_frame(data, path, self.format)
            yield base.RawBatch(
                source_uri=uri,
                fingerprint=sha,
                frame=frame,
                error=error,
                cursor={"seen": dict(seen), "listed": dict(listed)},
                row_names=row_names(data, path, frame, self.format),
            )

    def _list(self) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
        import fsspec  # here, not at import: a command that only reads records never polls

        fs, pattern = fsspec.core.url_to_fs(self.location, **self.options)
        # Object stores (s3fs, gcsfs, ...) cache listings per process: a long-running
        # controller would never see a file that arrived after its first poll.
        fs.invalidate_cache()
        if not fsspec.core.has_magic(pattern) and fs.isdir(pattern):
            pattern = posixpath.join(pattern, "*")
        found = fs.glob(pattern, detail=True)
        files = [
            (path, info)
            for path, info in found.items()
            if info.get("type") == "file" and not posixpath.basename(path).startswith(".")
        ]
        return fs, sorted(files, key=lambda item: item[0])


def _signature(info: dict[str, Any]) -> str | None:
    """What a listing says of a file's version: its size with its modification time or ETag
    (local files, S3, GCS, Azure, ...); None where the filesystem gives neither (read it)."""
    stamp = next((info[k] for k in ("mtime", "LastModified", "ETag", "etag", "updated",
                                     "last_modified") if info.get(k) is not None), None)
    return None if stamp is None else f"{info.get('size')}|{stamp}"


def read_frame(
    data: bytes, name: str, format: Format = "auto"
) -> tuple[pd.DataFrame | None, str | None]:
    """Parse file bytes into a frame, or say why not; never raises on bad content.

    >>> read_frame(b"a,b\\n1,2\\n", "x.csv")[0].to_dict("list")
    {'a': [1], 'b': [2]}
    >>> read_frame(b"", "x.csv")
    (None, 'empty file')
    >>> read_frame(b"a,b\\n1,2\\n3,4,5\\n", "x.csv")[1]
    'not valid CSV: Error tokenizing data. C error: Expected 2 fields in line 3, saw 3'
    """
    if not data.strip():
        return None, "empty file"
    stem, compression = _split_compression(name)
    kind = format if format != "auto" else _format_of(stem)
    if kind is None:
        return None, (
            f"unknown file type {posixpath.basename(name)!r}: name it .csv or .parquet, "
            "or set source.format"
        )
    if kind == "parquet":
        return _read_parquet(data)
    return _read_csv(data, compression)


def row_names(
    data: bytes, name: str, frame: pd.DataFrame | None, format: Format = "auto"
) -> row_names_.RowNames:
    """How reasons name the rows of `frame`, read by `read_frame` from `data`: by file line
    when the file is a plain CSV file of a header line and one line per row, else from 1.

    >>> data = b"a,b\\n1,2\\n3,4\\n"
    >>> row_names(data, "x.csv", read_frame(data, "x.csv")[0]).one(0)
    'line 2'
    >>> data = b"a,b\\n1,2\\n\\n3,4\\n"  # pandas skips the blank line: row 2 is line 4
    >>> row_names(data, "x.csv", read_frame(data, "x.csv")[0]).one(1)
    'row 2'
    """
    stem, compression = _split_compression(name)
    kind = format if format != "auto" else _format_of(stem)
    if frame is None or kind != "csv" or compression is not None:
        return row_names_.RowNames()
    lines = data.count(b"\n") + (not data.endswith(b"\n"))
    if lines != len(frame) + 1:
        return row_names_.RowNames()
    return row_names_.RowNames("line", first=2)


def _split_compression(name: str) -> tuple[str, str | None]:
    root, suffix = posixpath.splitext(name)
    if suffix.lower() in _COMPRESSION:
        return root, _COMPRESSION[suffix.lower()]
    return name, None


def _format_of(name: str) -> Literal["csv", "parquet"] | None:
    suffix = posixpath.splitext(name)[1].lower()
    if suffix in _CSV_SUFFIXES:
        return "csv"
    if suffix in _PARQUET_SUFFIXES:
        return "parquet"
    return None


def _read_csv(data: bytes, compression: str | None) -> tuple[pd.DataFrame | None, str | None]:
    import pandas as pd

    if compression is None and b"\x00" in data:
        offset = data.index(b"\x00")
        return None, f"not valid CSV: binary data (a NUL byte at offset {offset})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # A row longer than the header must not silently become the index or lose a field.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.BytesIO(data), compression=compression, low_memory=False, index_col=False
            )
    except pd.errors.ParserWarning:
        return None, "not valid CSV: a row has more fields than the header"
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        return None, f"not valid CSV: not UTF-8 text (byte {byte:#04x} at offset {exc.start})"
    except pd.errors.EmptyDataError:
        return None, "empty file"
    except (ValueError, OSError, EOFError) as exc:  # ParserError is a ValueError
        return None, f"not valid CSV: {_first_line(exc)}"
    twice = _repeated_names(data, compression)
    if twice:
        return None, f"not valid CSV: the header names {twice}"
    return frame, None


def _repeated_names(data: bytes, compression: str | None) -> str:
    """Header names given more than once, with their column numbers (pandas would rename the
    second one `x.1` and the batch look as if a column were missing).

    >>> _repeated_names(b"a,b,a\\n1,2,3\\n", None)
    "'a' in columns 1 and 3"
    """
    import pandas as pd

    header = pd.read_csv(io.BytesIO(data), compression=compression, header=None, nrows=1,
                         dtype=str, index_col=False).iloc[0].tolist()
    names = [str(name) for name in header]
    return "; ".join(
        f"{name!r} in columns " + " and ".join(
            str(i + 1) for i, other in enumerate(names) if other == name)
        for name in dict.fromkeys(n for n in names if names.count(n) > 1))


def _read_parquet(data: bytes) -> tuple[pd.DataFrame | None, str | None]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
        frame = table.to_pandas()
    except (pa.ArrowException, ValueError, OSError) as exc:
        return None, f"not valid Parquet: {_first_line(exc)}"
    return frame, None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
