"""The data directory names its format (manifest.json `format_version`), and
`lotline serve` refuses a directory of another format, or one with data but
no manifest, before touching it: non-zero exit, and a message naming the
directory, its format, the supported one and how to move the data over."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lotline_testlib import DEFAULT_PASSWORD, free_port, read_manifest

SUPPORTED = 2


def serve(binary: Path, data_dir: Path) -> subprocess.CompletedProcess:
    """`lotline serve` on `data_dir`; it must exit by itself."""
    return subprocess.run(
        [str(binary), "serve", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{free_port()}",
         "--http-listen", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"LOTLINE_ADMIN_PASSWORD": DEFAULT_PASSWORD, "PATH": "/usr/bin:/bin"},
    )


def assert_refused(out: subprocess.CompletedProcess, data_dir: Path, found: str):
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    for needle in (
        f"data directory {data_dir} has format version {found}",
        f"reads format {SUPPORTED} only",
        "Parquet that DuckDB or pyarrow read directly",
        "lotline load FILE.parquet --table TABLE",
    ):
        assert needle in text, f"{needle!r} not in:\n{text}"


def test_new_directory_is_stamped_with_the_format_at_first_start(server_factory):
    server = server_factory()
    assert read_manifest(server.data_dir)["format_version"] == SUPPORTED
    server.client.execute("INSERT INTO tags (tag, unit) VALUES ('fmt.tag', 'CEL')")
    server.restart(kill=True)
    assert server.client.count(table="tags") == 1
    assert read_manifest(server.data_dir)["format_version"] == SUPPORTED


@pytest.mark.parametrize("version", [1, 3])
def test_other_format_version_is_refused_with_what_to_do(server_factory, lotline_bin, version):
    server = server_factory(start=False)
    data_dir = server.data_dir
    data_dir.mkdir(parents=True)
    # The manifest of a version-1 directory: other fields may differ too.
    manifest = {"format_version": version, "next_segment_id": 7, "wal_replay_from": 3, "tables": {"samples": [{"file": "tables/samples/1.parquet"}]}}
    (data_dir / "manifest.json").write_text(json.dumps(manifest))
    out = serve(lotline_bin, data_dir)
    assert_refused(out, data_dir, str(version))
    assert json.loads((data_dir / "manifest.json").read_text()) == manifest, "the directory was changed"


def test_data_without_a_manifest_is_refused(server_factory, lotline_bin):
    server = server_factory(start=False)
    wal = server.data_dir / "wal"
    wal.mkdir(parents=True)
    (wal / "00000000000000000001.wal").write_bytes(b"LLW1 from an older lotline")
    out = serve(lotline_bin, server.data_dir)
    assert_refused(out, server.data_dir, "none (WAL or segments without a manifest)")
    assert not (server.data_dir / "manifest.json").exists()
