"""``yzt cap verify FILE``: does a CAP message carry a valid XML-DSig signature of a trusted signer?

    yzt cap verify warning.xml                   # trusts the configured cap_signing_cert (or var_dir's own)
    yzt cap verify warning.xml --cert gd.pem     # trusts the given certificate(s) instead
    yzt cap verify warning.xml --json            # {"verified": true, "signer": ..., "identifier": ..., ...}

Exit 0 when it verifies (the signer is printed), 2 with one line saying why when it does not: unsigned, a
byte changed after signing, signed by another key, more than one signature or one not at the top of
<alert>, malformed XML, a DOCTYPE/entity (refused unread). What is printed comes from the content the
signature covers, never from the rest of the file.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from command.cli import output as out
from command.errors import CapSignatureError, CommandError


def verify(file: Path = typer.Argument(..., help="the CAP XML file"),
           cert: Optional[List[Path]] = typer.Option(
               None, "--cert", help="trust this PEM certificate (repeatable); default: the configured "
               "cap_signing_cert, or the self-signed one in var_dir"),
           as_json: bool = out.JSON_OPT) -> None:
    """Check a CAP message's XML signature: exit 0 when it verifies, 2 when it does not."""
    from command.alerts import signing
    settings = out.settings()
    if cert:
        trusted = [_read(c, "certificate") for c in cert]
    else:
        trusted = [signing.trusted_certificate(cert=settings.cap_signing_cert, var_dir=settings.var_dir)]
    data = _read(file, "CAP file", limit=signing.MAX_BYTES)
    try:
        got = signing.verify(data, trusted=trusted, data_dir=settings.data_dir)
    except CapSignatureError as e:
        raise CapSignatureError(f"CAP file {file.name}: does not verify: {e}") from None
    result = {"file": str(file), "verified": True, "signer": got.signer, "identifier": got.identifier,
              "sender": got.sender}
    out.emit(result, as_json, lambda d: f"verified: {d['file']} is signed by {d['signer']} "
                                        f"(identifier {d['identifier']}, sender {d['sender']})")


def _read(path: Path, what: str, *, limit: int | None = None) -> bytes:
    try:
        if limit is not None and path.stat().st_size > limit:
            raise CapSignatureError(f"{what} {path.name}: over the {limit:,}-byte limit: refused unread")
        return path.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise CommandError(f"{what} {path}: is a directory") from None
    except OSError as e:
        raise CommandError(f"{what} {path}: cannot be read ({e.strerror})") from None


def register(cap_app: typer.Typer) -> None:
    """Add ``verify`` to the ``yzt cap`` group built in command/cli/main.py."""
    cap_app.command("verify")(verify)
