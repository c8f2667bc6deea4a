"""Push by digest from an OCI image layout: no tag, and no blob sent twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matrix.errors import UserError
from matrix.registry.layout import image_platform, push_layout
from matrix.registry.manifests import OCI_MANIFEST, sha256_digest


def _write_blob(layout: Path, content: bytes) -> dict:
    digest = sha256_digest(content)
    path = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return {"digest": digest, "size": len(content)}


def _layout(folder: Path, architecture: str = "arm64", layer: bytes = b"layer") -> str:
    """A one-image OCI layout as podman writes it; returns the manifest digest."""
    config = json.dumps({"os": "linux", "architecture": architecture}).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                **_write_blob(folder, config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    **_write_blob(folder, layer),
                }
            ],
        }
    ).encode()
    entry = {"mediaType": OCI_MANIFEST, **_write_blob(folder, manifest)}
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return entry["digest"]


def test_push_by_digest_writes_no_tag_and_skips_blobs_already_there(
    tmp_path, registry, make_client, repo
):
    client = make_client()
    target = repo(registry.host)
    first = _layout(tmp_path / "a")
    assert image_platform(tmp_path / "a") == "linux/arm64"

    pushed = push_layout(client, tmp_path / "a", target)

    assert pushed.digest == first
    assert client.get_manifest(target.with_digest(first)).digest == first
    assert client.list_tags(target) == []
    # A second image sharing the layer: only its new config goes up.
    second = _layout(tmp_path / "b", architecture="amd64")
    client.requests.reset()
    push_layout(client, tmp_path / "b", target)
    assert client.requests.by_method == {"HEAD": 3, "POST": 1, "PUT": 2}
    assert client.head_manifest(target.with_digest(second)) is not None
    # Pushed again (a retried build job): one look, nothing sent.
    client.requests.reset()
    assert push_layout(client, tmp_path / "b", target).digest == second
    assert client.requests.by_method == {"HEAD": 1}


def test_a_folder_that_is_not_a_one_image_layout_is_a_user_error(tmp_path, make_client, repo):
    client = make_client()
    with pytest.raises(UserError, match="not an OCI image layout"):
        push_layout(client, tmp_path, repo("127.0.0.1:1"))
    _layout(tmp_path / "two")
    index = json.loads((tmp_path / "two" / "index.json").read_text())
    index["manifests"] *= 2
    (tmp_path / "two" / "index.json").write_text(json.dumps(index))
    with pytest.raises(UserError, match="expected one image, found 2"):
        push_layout(client, tmp_path / "two", repo("127.0.0.1:1"))
