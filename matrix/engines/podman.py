"""podman through python-on-whales: the engine for local use and for the tests.

podman has no BuildKit: one build per platform, a manifest list of the results,
``podman manifest push --all`` to each tag, then the pushed index is read back to
report the platform digests the registry holds (pushing recompresses the layers,
so the local digests are not the pushed ones).

python-on-whales runs the list creation, its inspection and clean-up. The builds,
``manifest add`` and ``manifest push`` use the exact podman argv through
``python_on_whales.utils`` (python-on-whales' build has no --timestamp, its push no
--all, --tls-verify, --digestfile nor destination); matrix's own registry client
reads the pushed index back (podman 4's manifest inspect takes neither
--tls-verify nor an auth file).

podman pushes only to tags, so --push-by-digest writes the one-platform image to
an OCI layout folder and matrix's registry client uploads it by digest: no tag is
written, as with buildx's ``push-by-digest=true``.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from matrix.dockerfile import base_images
from matrix.engines.authfile import auth_file
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
from matrix.platform import Platform, slug
from matrix.reference import parse_reference
from matrix.registry import RegistryClient, RegistryError, RegistryHosts
from matrix.registry.layout import image_platform, push_layout

LOCAL_REPOSITORY = "localhost/matrix"


@dataclass(frozen=True)
class _Steps:
    builds: tuple[Call, ...]  # one per platform
    create: Call  # the local manifest list
    adds: tuple[Call, ...]  # one entry per platform
    inspect: Call  # its entries, checked against the platforms
    pushes: tuple[Call, ...]  # one per tag
    read_back: Call | None  # the pushed index, checked again
    cleanup: tuple[Call, ...]

    def all(self) -> list[Call]:
        tail = (self.read_back,) if self.read_back else ()
        return [
            *self.builds,
            self.create,
            *self.adds,
            self.inspect,
            *self.pushes,
            *tail,
            *self.cleanup,
        ]


@dataclass(frozen=True)
class _DigestSteps:
    build: Call
    to_layout: Call  # podman push to an OCI layout folder
    upload: Call  # shown by --dry-run; matrix's registry client runs it
    cleanup: Call

    def all(self) -> list[Call]:
        return [self.build, self.to_layout, self.upload, self.cleanup]


UPLOAD = "matrix.upload-layout"
READ_BACK = "matrix.read-back"
ATTEST = "matrix.attest"


class PodmanEngine:
    name = "podman"
    # matrix writes the provenance of podman's images, so it needs each base's digest
    # (from the build inputs); BuildKit records its own.
    writes_provenance = True

    def __init__(
        self,
        workdir: Path,
        *,
        tls_verify: bool = True,
        client: RegistryClient | None = None,
        run_id: str | None = None,
        client_call: Sequence[str] = ("podman",),
        base_mirrors: BaseMirrors | None = None,
        isolation: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.base_mirrors = base_mirrors or BaseMirrors()
        # chroot where the OCI runtime cannot create cgroups (nested containers, CI
        # sandboxes); podman reads BUILDAH_ISOLATION itself, this makes it visible.
        self.isolation = isolation
        self.tls_verify = tls_verify
        # The run's client: it reads pushed indexes back and uploads layouts, and its
        # host records say which base registries speak plain HTTP.
        self.registry = client
        # Local names carry a run id: two runs (or test sessions) never share a list.
        self.run_id = run_id or secrets.token_hex(6)
        self.client_call = list(client_call)
        self.client = DockerClient(client_call=self.client_call)
        # REGISTRY_AUTH_FILE while a build runs (see matrix.engines.authfile).
        self._auth_env: dict[str, str] = {}

    def prepare_calls(self) -> list[Call]:
        return []

    def require(self) -> None:
        import shutil

        if shutil.which("podman") is None:
            raise UserError("podman is not installed: install it, or use --engine buildx")

    def prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)

    def local_list(self, request: BuildRequest) -> str:
        return f"{LOCAL_REPOSITORY}/{request.key}:{self.run_id}"

    def local_image(self, request: BuildRequest, platform: str) -> str:
        return f"{self.local_list(request)}-{slug(platform)}"

    def steps(self, request: BuildRequest, digest: str = "<digest>") -> _Steps:
        """The calls of one build; ``digest`` is what the pushes report (for read-back)."""
        _refuse_buildx_only(request)
        local_list = self.local_list(request)
        images = [self.local_image(request, p) for p in request.platforms]
        builds = tuple(
            _build_call(self.client_call, request, platform, image, self._build_env(request))
            for platform, image in zip(request.platforms, images, strict=True)
        )
        pushes: tuple[Call, ...] = ()
        read_back = None
        cleanup: tuple[Call, ...] = ()
        if request.push:
            pushes = tuple(
                Call("run", (self._push_argv(local_list, tag),), env=self._auth_env)
                for tag in request.tags
            )
            read_back = Call(READ_BACK, (f"{request.repository}@{digest}",))
            # --keep-local: the pushed tags name the one platform's image before its
            # local name goes, so removing that name only untags it.
            keep = (
                tuple(Call("image.tag", (images[0], tag)) for tag in request.tags)
                if request.keep_local
                else ()
            )
            cleanup = (
                Call("manifest.remove", (local_list,)),
                *keep,
                Call("image.remove", (images,)),
            )
        # python-on-whales has no `manifest add`, and podman's manifest create takes no
        # annotations: each entry is added with the exact argv.
        annotate = [f"--annotation={k}={v}" for k, v in request.annotations.items()]
        adds = tuple(
            Call(
                "run",
                (
                    [
                        *self.client_call,
                        "manifest",
                        "add",
                        *annotate,
                        local_list,
                        f"containers-storage:{image}",
                    ],
                ),
            )
            for image in images
        )
        return _Steps(
            builds=builds,
            create=Call("manifest.create", (local_list, [])),
            adds=adds,
            inspect=Call("manifest.inspect", (local_list,)),
            pushes=pushes,
            read_back=read_back,
            cleanup=cleanup,
        )

    def digest_steps(self, request: BuildRequest) -> _DigestSteps:
        """The calls of a push-by-digest build: one platform, to a layout, then uploaded."""
        _refuse_buildx_only(request)
        (platform,) = request.platforms
        image = self.local_image(request, platform)
        layout = self.layout_path(request)
        build = _build_call(self.client_call, request, platform, image, self._build_env(request))
        to_layout = Call(
            "run",
            ([*self.client_call, "push", "--format", "oci", image, f"oci:{layout}:image"],),
        )
        upload = Call(UPLOAD, (str(layout), request.repository))
        return _DigestSteps(build, to_layout, upload, Call("image.remove", ([image],)))

    def calls(self, request: BuildRequest) -> list[Call]:
        if request.push_by_digest:
            found, left = self.digest_steps(request).all(), 1
        else:
            found, left = self.steps(request).all(), len(self.steps(request).cleanup)
        wanted = [
            k for k, on in (("an SBOM", request.sbom), ("provenance", request.provenance)) if on
        ]
        if (request.push or request.push_by_digest) and wanted:
            # Before the clean-up: the SBOM reads the local image's dpkg status.
            found.insert(len(found) - left, Call(ATTEST, (" and ".join(wanted),)))
        return found

    def show(self, call: Call) -> str:
        if call.target == UPLOAD:
            layout, repository = call.args
            return f"# matrix uploads {layout} to {repository} by digest, with no tag"
        if call.target == ATTEST:
            return f"# matrix attaches {call.args[0]} to each pushed platform image (OCI referrers)"
        if call.target == READ_BACK:
            return f"# matrix reads {call.args[0]} back from the registry"
        return call.show("podman")

    def layout_path(self, request: BuildRequest) -> Path:
        return (
            self.workdir / "layouts" / f"{request.key}-{slug(request.platforms[0])}-{self.run_id}"
        )

    def build(self, request: BuildRequest, log: LogSink) -> BuildResult:
        """Build (and push), podman holding matrix's credentials for the target and
        the base mirrors in a private auth file for as long as the build runs."""
        hosts = [_registry_host(request), *self.base_mirrors.mirrors.values()]
        with auth_file(hosts) as self._auth_env:
            try:
                if request.push_by_digest:
                    return self._build_by_digest(request, log)
                return self._build(request, log)
            finally:
                self._auth_env = {}

    def _build(self, request: BuildRequest, log: LogSink) -> BuildResult:
        steps = self.steps(request)
        tail: deque[str] = deque(maxlen=LOG_TAIL)
        self._write_registries_conf(request)
        try:
            for call in steps.builds:
                stream_build(call, self.client, log, tail)
            steps.create.invoke(self.client)
            for call in steps.adds:
                call.invoke(self.client)
            # The trap this guards against: podman silently leaving out a platform.
            local = steps.inspect.invoke(self.client)
            _check_platforms(
                request, {_platform_of(m.platform) for m in local.manifests}, "the list"
            )
            if not request.push:
                return BuildResult(request.key, tags=(self.local_list(request),))
            digest = None
            for call in steps.pushes:
                digest = self._push(request, call, digest)
            pushed = self._read_back(request, self.steps(request, digest).read_back, digest)
            self._attest(
                request,
                {str(Platform.from_json(e["platform"])): e["digest"] for e in pushed["manifests"]},
                dict(zip(request.platforms, steps.builds, strict=True)),
                log,
            )
            for call in steps.cleanup:
                call.invoke(self.client)
        except DockerException as error:
            raise _failed(request, error, tail) from None
        return BuildResult(
            request.key,
            digest=digest,
            # Not pushed.get("mediaType"): podman shows an OCI index as a Docker list.
            media_type=None,
            platform_digests={
                str(Platform.from_json(entry["platform"])): entry["digest"]
                for entry in pushed["manifests"]
            },
            tags=request.tags,
        )

    def _build_by_digest(self, request: BuildRequest, log: LogSink) -> BuildResult:
        steps = self.digest_steps(request)
        (platform,) = request.platforms
        layout = self.layout_path(request)
        tail: deque[str] = deque(maxlen=LOG_TAIL)
        shutil.rmtree(layout, ignore_errors=True)
        layout.parent.mkdir(parents=True, exist_ok=True)
        self._write_registries_conf(request)
        try:
            stream_build(steps.build, self.client, log, tail)
            steps.to_layout.invoke(self.client)
            _check_platforms(request, {image_platform(layout)}, "the built image")
            with self._client(request) as client:
                pushed = push_layout(client, layout, parse_reference(request.repository))
            self._attest(request, {platform: pushed.digest}, {platform: steps.build}, log)
            steps.cleanup.invoke(self.client)
        except DockerException as error:
            raise _failed(request, error, tail) from None
        except RegistryError as error:
            raise BuildFailed(request.key, f"upload by digest failed: {error}") from None
        finally:
            shutil.rmtree(layout, ignore_errors=True)
        log(f"pushed {request.repository}@{pushed.digest}")
        return BuildResult(
            request.key,
            digest=pushed.digest,
            media_type=pushed.media_type,
            platform_digests={request.platforms[0]: pushed.digest},
        )

    def _attest(
        self,
        request: BuildRequest,
        digests: dict[str, str],
        builds: dict[str, Call],
        log: LogSink,
    ) -> None:
        """Attach an SBOM and a provenance statement, as asked, to each pushed platform
        image, read from its local image before the clean-up removes it."""
        if not (request.sbom or request.provenance):
            return
        from matrix.attest.image import attest_image

        try:
            with self._client(request) as client:
                for platform, digest in sorted(digests.items()):
                    attached = attest_image(
                        client,
                        self.client_call,
                        request,
                        platform,
                        self.local_image(request, platform),
                        digest,
                        [self.show(builds[platform])],
                    )
                    for kind, found in (
                        ("SBOM", attached.sbom),
                        ("provenance", attached.provenance),
                    ):
                        if found:
                            log(f"attached the {kind} of {platform} as {found}")
        except (RegistryError, subprocess.CalledProcessError, ValueError) as error:
            raise BuildFailed(request.key, f"attaching attestations failed: {error}") from None

    def _push_argv(self, local_list: str, tag: str) -> list[str]:
        return [
            *self.client_call,
            "manifest",
            "push",
            "--all",
            f"--tls-verify={str(self.tls_verify).lower()}",
            "--digestfile",
            str(self._digest_file(tag)),
            local_list,
            f"docker://{tag}",
        ]

    def _push(self, request: BuildRequest, call: Call, earlier: str | None) -> str:
        tag = call.args[0][-1].removeprefix("docker://")
        digest_file = self._digest_file(tag)
        digest_file.parent.mkdir(parents=True, exist_ok=True)
        digest_file.unlink(missing_ok=True)
        call.invoke(self.client)
        digest = digest_file.read_text(encoding="utf-8").strip()
        if earlier is not None and digest != earlier:
            raise BuildFailed(
                request.key, f"podman pushed {earlier} to one tag and {digest} to {tag}"
            )
        return digest

    def _read_back(self, request: BuildRequest, call: Call, digest: str) -> dict:
        """The pushed index, read with matrix's own client and credentials (podman 4's
        manifest inspect takes neither --tls-verify nor an auth file)."""
        ref = parse_reference(call.args[0])
        try:
            with self._client(request) as client:
                pushed = json.loads(client.get_manifest(ref).content)
        except RegistryError as error:
            raise BuildFailed(request.key, f"reading back {ref} failed: {error}") from None
        _check_platforms(
            request,
            {str(Platform.from_json(e["platform"])) for e in pushed.get("manifests", [])},
            f"the pushed index {digest}",
        )
        return pushed

    def _plain_http_hosts(self, request: BuildRequest) -> list[str]:
        """The registries podman must talk plain HTTP to for this build: the target
        (unless TLS is verified) and any base image's that is loopback or named
        insecure, as matrix's own client treats them."""
        hosts = [] if self.tls_verify else [_registry_host(request)]
        records = self.registry.hosts if self.registry is not None else RegistryHosts()
        dockerfile = request.context / "Dockerfile"
        if dockerfile.is_file():
            for base in base_images(dockerfile.read_text(encoding="utf-8"), request.build_args):
                host = parse_reference(base).registry
                if records[host].plain_http:
                    hosts.append(host)
        return list(dict.fromkeys(hosts))

    @contextmanager
    def _client(self, request: BuildRequest) -> Iterator[RegistryClient]:
        """The run's client, or for an engine made without one a client of its own for
        the one call (the target as plain HTTP when TLS is not verified)."""
        if self.registry is not None:
            yield self.registry
            return
        insecure = () if self.tls_verify else (_registry_host(request),)
        with RegistryClient(insecure_registries=insecure) as client:
            yield client

    def registries_conf(self, request: BuildRequest) -> str:
        """podman's build and inspect have no --tls-verify of their own: a private
        registries.conf marks the plain-HTTP registries and sends base pulls to
        their mirrors. Empty when neither is needed."""
        hosts = self._plain_http_hosts(request)
        entries = "".join(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n' for host in hosts)
        return entries + self.base_mirrors.registries_conf()

    def _write_registries_conf(self, request: BuildRequest) -> None:
        text = self.registries_conf(request)
        if text:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._registries_conf().write_text(text)

    def _registries_env(self, request: BuildRequest) -> dict[str, str]:
        if not self.registries_conf(request):
            return {}
        return {"CONTAINERS_REGISTRIES_CONF": str(self._registries_conf())}

    def _build_env(self, request: BuildRequest) -> dict[str, str]:
        isolation = {"BUILDAH_ISOLATION": self.isolation} if self.isolation else {}
        return {**self._registries_env(request), **isolation, **self._auth_env}

    def _registries_conf(self) -> Path:
        return self.workdir / "registries.conf"

    def _digest_file(self, tag: str) -> Path:
        return self.workdir / "digests" / tag.replace("/", "_").replace(":", "_")


def _failed(request: BuildRequest, error: DockerException, tail: deque[str]) -> BuildFailed:
    lines = stderr_lines(error)
    return BuildFailed(
        request.key,
        f"podman exited with {error.return_code}: {lines[-1] if lines else ''}",
        tuple([*tail, *lines][-LOG_TAIL:]),
    )


def _build_call(
    client_call: Sequence[str],
    request: BuildRequest,
    platform: str,
    image: str,
    env: dict[str, str],
) -> Call:
    """One platform's build, tagged ``image`` in podman's local storage: the one place
    its argv is made. podman itself, not python-on-whales' build, runs it: that has no
    option for --timestamp, the flag that makes two builds of the same inputs
    byte-identical (SOURCE_DATE_EPOCH alone pins only the config's created date)."""
    argv = [*client_call, "build", "--platform", platform, "--tag", image]
    for name, value in request.labels.items():
        argv += ["--label", f"{name}={value}"]
    for name, value in request.build_args.items():
        argv += ["--build-arg", f"{name}={value}"]
    argv += [
        f"--pull={str(request.pull).lower()}",
        # podman's layer cache does not key on the platform for FROM scratch
        # stages: a cached build gives the second platform the first's image.
        "--no-cache",
        # RUN steps reach what the host reaches (the package index, a proxy):
        # rootless and chroot builds have no network of their own to route.
        "--network",
        "host",
    ]
    if request.source_date_epoch is not None:
        argv += ["--timestamp", str(request.source_date_epoch)]
    argv.append(str(request.context))
    # Only the final image is committed: no untagged intermediate images pile up in
    # podman's storage after the clean-up.
    return Call("run", (argv,), env={"BUILDAH_LAYERS": "false", **env})


def _refuse_buildx_only(request: BuildRequest) -> None:
    wanted = [flag for flag, on in (("a registry cache", request.cache is not None),) if on]
    if wanted:
        raise UserError(f"the podman engine cannot do {', '.join(wanted)}: use --engine buildx")


def _check_platforms(request: BuildRequest, found: set[str], where: str) -> None:
    missing = [p for p in request.platforms if p not in found]
    if missing:
        raise BuildFailed(
            request.key, f"{where} lacks {', '.join(missing)} (it has: {', '.join(sorted(found))})"
        )


def _platform_of(platform) -> str:
    """os/arch[/variant] of a python-on-whales ManifestPlatform."""
    return str(Platform(platform.os or "", platform.architecture or "", platform.variant))


def _registry_host(request: BuildRequest) -> str:
    return request.repository.partition("/")[0]
