"""docker buildx through python-on-whales: the production engine.

One ``docker.buildx.build`` per request, pushing straight to the registry. The
pushed digest is read back from ``--metadata-file`` (``containerimage.digest``):
buildx pushes an index for a multi-platform build, and python-on-whales returns
nothing for a pushed build.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from matrix.engines.base import (
    LOG_TAIL,
    BuildFailed,
    BuildRequest,
    BuildResult,
    Call,
    LogSink,
    stderr_lines,
    stream_build,
)
from matrix.engines.mirrors import BaseMirrors
from matrix.errors import UserError
from matrix.platform import slug

DEFAULT_BUILDER = "matrix"


class BuildxEngine:
    name = "buildx"
    writes_provenance = False  # BuildKit's own provenance names the bases it pulled

    def __init__(
        self,
        workdir: Path,
        *,
        builder: str | None = None,
        create_builder: bool = False,
        insecure_registries: Sequence[str] = (),
        client_call: Sequence[str] = ("docker",),
        base_mirrors: BaseMirrors | None = None,
    ) -> None:
        self.base_mirrors = base_mirrors or BaseMirrors()
        if self.base_mirrors and not create_builder:
            # A builder's registry config is fixed when it is created.
            raise UserError(
                "--base-mirror with --engine buildx needs --create-builder: the mirror goes "
                "into the new builder's registry config"
            )
        self.workdir = workdir
        self.builder = builder or (DEFAULT_BUILDER if create_builder else None)
        self.create_builder = create_builder
        self.insecure_registries = tuple(insecure_registries)
        self.client = DockerClient(client_call=list(client_call))

    def prepare_calls(self) -> list[Call]:
        """``docker buildx create`` for a fresh docker-container builder, if asked."""
        if not self.create_builder:
            return []
        kwargs: dict = {"name": self.builder, "driver": "docker-container", "bootstrap": True}
        if self.insecure_registries or self.base_mirrors:
            # BuildKit runs in a container: a registry on the host's loopback is only
            # reachable over the host network, and only over plain HTTP when told so.
            kwargs["driver_options"] = {"network": "host"}
            kwargs["config"] = str(self._buildkitd_config())
        return [Call("buildx.create", kwargs=kwargs)]

    def buildkitd_toml(self) -> str:
        """The new builder's registry config: plain-HTTP registries and base mirrors."""
        mirrored = set(self.base_mirrors.mirrors.values())
        plain = "".join(
            f'[registry."{host}"]\n  http = true\n'
            for host in self.insecure_registries
            if not (host in mirrored and self.base_mirrors.plain_http(host))
        )
        return plain + self.base_mirrors.buildkitd_toml()

    def prepare(self) -> None:
        self.require()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.create_builder and (self.insecure_registries or self.base_mirrors):
            self._buildkitd_config().write_text(self.buildkitd_toml())
        for call in self.prepare_calls():
            try:
                call.invoke(self.client)
            except DockerException as error:
                raise UserError(
                    f"docker buildx create --name {self.builder} failed "
                    f"({_last_line(error)}): drop --create-builder to use an existing builder"
                ) from None

    def require(self) -> None:
        """A docker CLI without the plugin would refuse buildx's flags one by one."""
        from python_on_whales.client_config import ClientNotFoundError

        try:
            self.client.buildx.version()
        except ClientNotFoundError:
            raise UserError("docker is not installed: install it, or use --engine podman") from None
        except DockerException as error:
            raise UserError(
                f"docker buildx is not installed ({_last_line(error)}): install docker's buildx "
                "plugin, or use --engine podman"
            ) from None

    def calls(self, request: BuildRequest) -> list[Call]:
        kwargs: dict = {
            "platforms": list(request.platforms),
            "labels": dict(request.labels),
            "build_args": dict(request.build_args),
            "pull": request.pull,
            # --provenance mode=max and --sbom=true are --attest type=provenance,mode=max
            # and --attest type=sbom: attestation manifests in the pushed index.
            "provenance": {"mode": "max"} if request.provenance else False,
            "sbom": request.sbom,
            "metadata_file": str(self.metadata_path(request)),
            "progress": "plain",  # with stream_logs: lines to show and stderr on failure
            "stream_logs": True,
        }
        if self.builder:
            kwargs["builder"] = self.builder
        # python-on-whales 0.81 has no --annotation: annotations go into the output.
        annotations = {f"annotation.{k}": v for k, v in request.annotations.items()}
        if request.push_by_digest:
            # No tag: the digest is the name, and the per-platform images are merged
            # into tagged indexes later (docker/build-push-action's multi-runner recipe).
            kwargs["output"] = {
                "type": "image",
                "name": request.repository,
                "push-by-digest": "true",
                "name-canonical": "true",
                "push": "true",
                **annotations,
            }
        elif request.push and annotations:
            kwargs["tags"] = list(request.tags)
            index = {f"annotation-index.{k}": v for k, v in request.annotations.items()}
            # An index is pushed for several platforms, and for one with attestations.
            multi = len(request.platforms) > 1 or request.sbom or request.provenance
            kwargs["output"] = {
                "type": "image",
                "push": "true",
                **annotations,
                **(index if multi else {}),
            }
        elif request.push and request.source_date_epoch is not None:
            kwargs["tags"] = list(request.tags)
            kwargs["output"] = {"type": "image", "push": "true"}
        else:
            kwargs["tags"] = list(request.tags)
            kwargs["push"] = request.push
        env = {}
        if request.source_date_epoch is not None:
            # BuildKit takes the epoch for the config and history from the environment;
            # rewrite-timestamp also clamps the files in the layers to it, so two builds
            # of the same inputs push the same digest. A build that pushes nothing
            # keeps buildx's default output (the builder's store, or docker's).
            env["SOURCE_DATE_EPOCH"] = str(request.source_date_epoch)
            if "output" in kwargs:
                kwargs["output"]["rewrite-timestamp"] = "true"
        if request.cache:
            # python-on-whales takes a list of dicts here, not a list of strings.
            kwargs["cache_from"] = [
                {"type": "registry", "ref": r} for r in request.cache.cache_from
            ]
            if request.cache.cache_to:
                kwargs["cache_to"] = {
                    "type": "registry",
                    "ref": request.cache.cache_to,
                    "mode": request.cache.mode,
                }
        return [Call("buildx.build", (str(request.context),), kwargs, env=env)]

    def show(self, call: Call) -> str:
        return call.show("docker")

    def build(self, request: BuildRequest, log: LogSink) -> BuildResult:
        metadata = self.metadata_path(request)
        metadata.parent.mkdir(parents=True, exist_ok=True)
        metadata.unlink(missing_ok=True)
        tail: deque[str] = deque(maxlen=LOG_TAIL)
        for call in self.calls(request):
            try:
                stream_build(call, self.client, log, tail)
            except DockerException as error:
                raise BuildFailed(
                    request.key, f"docker buildx build exited with {error.return_code}", tuple(tail)
                ) from None
        pushed = request.push or request.push_by_digest
        return read_metadata(request, metadata) if pushed else BuildResult(request.key)

    def metadata_path(self, request: BuildRequest) -> Path:
        suffix = "-" + slug(request.platforms[0]) if request.push_by_digest else ""
        return self.workdir / "metadata" / f"{request.key}{suffix}.json"

    def _buildkitd_config(self) -> Path:
        return self.workdir / "buildkitd.toml"


def read_metadata(request: BuildRequest, path: Path) -> BuildResult:
    """The pushed digest from buildx's --metadata-file."""
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BuildFailed(
            request.key, f"buildx left no readable metadata file {path}: {error}"
        ) from None
    digest = metadata.get("containerimage.digest")
    if not digest:
        raise BuildFailed(request.key, f"buildx reported no pushed digest in {path}")
    descriptor = metadata.get("containerimage.descriptor") or {}
    platform_digests = {request.platforms[0]: digest} if request.push_by_digest else {}
    return BuildResult(
        key=request.key,
        digest=digest,
        media_type=descriptor.get("mediaType"),
        platform_digests=platform_digests,
        tags=request.tags,
    )


def _last_line(error: DockerException) -> str:
    lines = stderr_lines(error)
    return lines[-1] if lines else f"exit code {error.return_code}"
