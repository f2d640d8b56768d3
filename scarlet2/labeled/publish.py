"""Writing a result store so that nothing is lost: checks before any work, then a swap.

The result is written to a sibling ``OUT.tmp`` and swapped in: the old store (if any) is first
renamed ``OUT.replaced``, the new one renamed ``OUT``, then the old one removed. At every
instant a complete store exists under ``OUT`` or ``OUT.replaced``; :func:`check_output` puts
back a store that an interrupted swap left as ``OUT.replaced``. Paths are local or fsspec URLs.
The guarantee rests on renames being atomic, as on local file systems; object stores (``s3://``)
move by copy and delete, so a kill during a move there can leave the moved store partial.
"""

from __future__ import annotations

import os

import fsspec

from ..errors import InputError, StoreError
from .store import write_zarr

TMP_SUFFIX = ".tmp"
REPLACED_SUFFIX = ".replaced"


def _fs(url):
    fs, path = fsspec.core.url_to_fs(os.fspath(url))
    return fs, path.rstrip("/")


def _key(url) -> tuple[str, str]:
    fs, path = _fs(url)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol, os.path.realpath(path) if protocol in ("file", "local") else path


def check_output(out, overwrite: bool = False, inputs=()) -> None:
    """Refuse, before any work, an output store that cannot or must not be written.

    Raises
    ------
    InputError
        ``out`` is one of ``inputs`` or inside one (or holds one); ``out`` is a file, not a
        store; ``out`` exists and ``overwrite`` is false.
    StoreError
        The place of ``out`` cannot be written (a read-only folder, a missing bucket).
    """
    fs, path = _fs(out)
    protocol, key = _key(out)
    for src in inputs:
        if src is None:
            continue
        p, k = _key(src)
        if p == protocol and (k == key or key.startswith(k.rstrip("/") + "/") or k.startswith(key + "/")):
            raise InputError(f"--out {out} is the input {src} (or inside it): refusing to write the result over it")
    replaced = path + REPLACED_SUFFIX
    if not fs.exists(path) and fs.exists(replaced):
        fs.mv(replaced, path, recursive=True)  # an interrupted swap: put the complete store back
    elif fs.exists(path) and fs.exists(replaced):
        fs.rm(replaced, recursive=True)  # the swap finished; only the old store's removal did not
    if fs.exists(path):
        if fs.isfile(path):
            raise InputError(f"--out {out} is a file, not a Zarr store (a folder); choose another name")
        if not overwrite:
            raise InputError(f"{out} exists; pass --overwrite to replace it")
    probe = path + TMP_SUFFIX
    try:
        if fs.exists(probe):
            fs.rm(probe, recursive=True)
        fs.makedirs(probe, exist_ok=True)
        fs.pipe(probe + "/.probe", b"")
        fs.rm(probe, recursive=True)
    except OSError as err:
        raise StoreError(f"cannot write next to {out} ({type(err).__name__}: {err})") from None


def publish(obj, out) -> None:
    """Write a Dataset or DataTree to the store ``out``, replacing any store there by a swap
    (see the module's docstring): an interruption at any moment loses no complete store."""
    fs, path = _fs(out)
    tmp, replaced = path + TMP_SUFFIX, path + REPLACED_SUFFIX
    out_url = os.fspath(out)
    if fs.exists(tmp):
        fs.rm(tmp, recursive=True)
    write_zarr(obj, out_url + TMP_SUFFIX, mode="w")
    if fs.exists(path):
        if fs.isfile(path):
            raise InputError(f"{out} is a file, not a Zarr store (a folder)")
        fs.mv(path, replaced, recursive=True)
    fs.mv(tmp, path, recursive=True)
    if fs.exists(replaced):
        fs.rm(replaced, recursive=True)
