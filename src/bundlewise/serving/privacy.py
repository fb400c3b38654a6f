"""Customer ids in logs: keyed pseudonyms, with a secret generated once per workspace.

The secret is 256 random bits kept in the workspace (``pseudonym_secret``, readable only by its
owner), so a pseudonym cannot be reversed by trying customer ids without the workspace; the
same customer keeps the same pseudonym across restarts and worker processes of one workspace.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from bundlewise.exceptions import ConfigError

SECRET_FILE = "pseudonym_secret"


def pseudonym(customer_id: str, secret: str) -> str:
    """A keyed, stable pseudonym of a customer id for logs.

    Examples
    --------
    >>> pseudonym("12346", "s") == pseudonym("12346", "s") != pseudonym("12347", "s")
    True
    >>> pseudonym("12346", "s") != pseudonym("12346", "t")
    True
    """
    return "c_" + hmac.new(secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()[:12]


def workspace_secret(workspace: Path) -> str:
    """The workspace's pseudonym secret, generated (and stored, mode 0600) on first use.

    Several processes starting at once agree on one secret: the file is created exclusively.

    Raises
    ------
    ConfigError
        When the secret file cannot be read or created.
    """
    path = Path(workspace) / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the pseudonym secret ({exc.strerror}).") from None
    else:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(32))
            f.flush()
            os.fsync(f.fileno())
    try:
        for _ in range(50):  # another process may be writing it this instant
            text = path.read_text(encoding="ascii").strip()
            if text:
                return text
            time.sleep(0.02)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the pseudonym secret ({exc}).") from None
    raise ConfigError(f"{path}: the pseudonym secret file is empty; delete it to make a new one.")


__all__ = ["SECRET_FILE", "pseudonym", "workspace_secret"]
