"""`bundlewise keys` and the errors of `bundlewise serve` before training."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bundlewise.cli.main import app
from bundlewise.serving.keys import KeyStore

runner = CliRunner()


def test_create_list_revoke(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    created = runner.invoke(
        app, ["keys", "create", "--scope", "read", "--label", "shop", "--workspace", str(ws)]
    )
    assert created.exit_code == 0, created.output
    key = created.output.strip()
    assert key.startswith("bw_")
    stored = (ws / "api_keys.json").read_text()
    assert key not in stored  # only the hash is stored
    assert json.loads(stored)["keys"][0]["scopes"] == ["read"]
    assert KeyStore(ws / "api_keys.json").verify(key) is not None
    listed = runner.invoke(app, ["keys", "list", "--workspace", str(ws)])
    key_id = key.split("_")[1]
    assert key_id in listed.output and "shop" in listed.output and key not in listed.output
    revoked = runner.invoke(app, ["keys", "revoke", key_id, "--workspace", str(ws)])
    assert revoked.exit_code == 0
    assert KeyStore(ws / "api_keys.json").verify(key) is None
    again = runner.invoke(app, ["keys", "revoke", key_id, "--workspace", str(ws)])
    assert again.exit_code == 2 and "no key with id" in again.output


def test_bad_scope_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["keys", "create", "--scope", "root", "--workspace", str(tmp_path)])
    assert result.exit_code == 2
    assert "expected some of" in result.output and "Traceback" not in result.output


def test_serve_without_a_trained_workspace_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", "--workspace", str(tmp_path / "none")])
    assert result.exit_code == 1  # no trained model: a domain error
    assert "bundlewise train" in result.output and "Traceback" not in result.output


def test_serve_with_a_bad_bucket_range_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["serve", "--workspace", str(tmp_path / "none"), "--buckets", "4-2/8"]
    )
    assert result.exit_code != 0
    assert "serve: buckets: buckets '4-2/8': need 0 <= I <= J < N" in result.output
    assert "Traceback" not in result.output and "Value error" not in result.output
