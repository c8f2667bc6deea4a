"""Render a plan's Dockerfile templates into one build context per image.

The output is a function of the plan, the templates and SOURCE_DATE_EPOCH only:
rendering twice gives byte-identical files. Templates see StrictUndefined, so a
misspelled variable fails the render instead of vanishing from a Dockerfile.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from matrix.config import LoadedConfig
from matrix.engines.mirrors import BaseMirrors
from matrix.engines.requests import build_epoch
from matrix.errors import UserError
from matrix.index import Index
from matrix.lock import (
    IMAGE_INSTALL_FOLDER,
    IMAGE_LOCK_PATH,
    INSTALL_FOLDER,
    ImageLock,
    encode_pins,
    format_as_of,
)
from matrix.plan import ImageSpec, Plan
from matrix.publish.annotations import CREATED_LABEL, PINS_ANNOTATION, RESOLVED_AS_OF

# Files in this folder of the templates directory are copied into every context.
CONTEXT_FILES = "context"

# Checked again here although versions.toml is validated on load: these values end
# up in ARG defaults, LABEL values and pip command lines, where a newline would add
# an instruction and a shell character would add a command.
_PACKAGE_SPEC_RE = re.compile(r"[A-Za-z0-9_.,:=<>!~\[\]/+@ -]*")
_DOUBLE_QUOTED_RE = re.compile(r'[^"\\$`\x00-\x1f\x7f]*')
_ARG_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL_KEY_RE = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")


@dataclass(frozen=True)
class RenderedContext:
    key: str
    path: Path  # the build context folder
    # What the pushed image carries as annotations from its render: the lock's date.
    annotations: Mapping[str, str] = field(default_factory=dict)
    lock: ImageLock | None = None

    def describe_lock(self) -> str:
        """``lock as of <date> (<why that date>)``, or empty for an image without one."""
        if self.lock is None:
            return ""
        return f"lock as of {format_as_of(self.lock.as_of)} ({self.lock.as_of_source})"

    @property
    def dockerfile(self) -> Path:
        return self.path / "Dockerfile"


def check_renderable(plan: Plan, loaded: LoadedConfig, out_dir: Path) -> None:
    """What can fail without the index, before the locks read it: the output folder,
    and every template the plan uses (a syntax error names its file and line)."""
    import jinja2

    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: not a folder, so no build context can go there")
    environment = template_environment(loaded.templates_dir)
    for spec in plan.images:
        try:
            environment.get_template(spec.template)
        except jinja2.TemplateNotFound:
            raise UserError(
                f"{spec.key}: template {spec.template} not found in {loaded.templates_dir}"
            ) from None
        except jinja2.TemplateSyntaxError as error:
            raise _syntax_error(environment, spec, error) from None


def render_plan(
    plan: Plan,
    loaded: LoadedConfig,
    out_dir: Path,
    *,
    source_date_epoch: int | None = None,
    locks: Mapping[str, ImageLock] | None = None,
) -> list[RenderedContext]:
    """Write ``out_dir/<key>/`` for every image of the plan, replacing older renders.

    An image whose [images] entry names a package installs its lock (``locks``, from
    ``matrix.lock.lock_plan``): the lock files go into its context. Every Dockerfile is
    rendered before the first is written, so a template error leaves ``out_dir`` as it
    was."""
    check_renderable(plan, loaded, out_dir)
    environment = template_environment(loaded.templates_dir)
    extra_files = _context_files(loaded.templates_dir)
    locks = locks or {}
    texts = {}
    for spec in plan.images:
        lock = locks.get(spec.key)
        package = loaded.config.images[spec.image].package
        if package and lock is None:
            raise UserError(f"{spec.key} installs {package}: it renders only with its lock")
        texts[spec.key] = render_dockerfile(
            environment, spec, source_date_epoch=source_date_epoch, lock=lock, package=package
        )
    contexts = []
    try:
        for key, text in texts.items():
            lock = locks.get(key)
            context = out_dir / key
            if context.exists():
                shutil.rmtree(context)
            context.mkdir(parents=True)
            (context / "Dockerfile").write_text(text, encoding="utf-8")
            for source in extra_files:
                shutil.copy(source, context / source.name)  # with its mode: scripts run
            annotations = {}
            if lock is not None:
                lock.write(context)
                annotations[RESOLVED_AS_OF] = format_as_of(lock.as_of)
                annotations[PINS_ANNOTATION] = encode_pins(lock)
            contexts.append(RenderedContext(key, context, annotations, lock))
    except OSError as error:
        raise UserError(f"{error.filename or out_dir}: cannot write: {error.strerror}") from None
    return contexts


def render_dockerfile(
    environment,
    spec: ImageSpec,
    *,
    source_date_epoch: int | None,
    lock: ImageLock | None = None,
    package: str | None = None,
) -> str:
    """One Dockerfile; ``environment`` comes from :func:`template_environment`."""
    import jinja2

    build_args = checked_build_args(spec)
    labels = dict(spec.labels)
    if lock is not None:
        labels[RESOLVED_AS_OF] = format_as_of(lock.as_of)
    if source_date_epoch is not None:
        created = datetime.fromtimestamp(source_date_epoch, UTC)
        labels[CREATED_LABEL] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    for name in labels:
        if not _LABEL_KEY_RE.fullmatch(name):
            raise UserError(f"{spec.key}: label name {name!r} is not a valid label key")
    try:
        template = environment.get_template(spec.template)
    except jinja2.TemplateNotFound:
        raise UserError(
            f"{spec.key}: template {spec.template} not found in {environment.loader.searchpath[0]}"
        ) from None
    except jinja2.TemplateSyntaxError as error:
        raise _syntax_error(environment, spec, error) from None
    try:
        text = template.render(
            key=spec.key,
            template=spec.template,
            python=spec.python,
            flavor=spec.flavor,
            build_args=build_args,
            labels=dict(sorted(labels.items())),
            contents=spec.contents,
            package=package or "",
            locked=lock is not None,
            install_folder=INSTALL_FOLDER,
            image_install_folder=IMAGE_INSTALL_FOLDER,
            image_lock_path=IMAGE_LOCK_PATH,
            # What the engines set every timestamp to (the same value they get).
            epoch=build_epoch(source_date_epoch, lock.as_of if lock is not None else None),
        )
    except jinja2.UndefinedError as error:
        raise UserError(f"{spec.key}: {spec.template}: {error.message}") from None
    except jinja2.TemplateSyntaxError as error:  # in a template it includes
        raise _syntax_error(environment, spec, error) from None
    return text.rstrip("\n") + "\n"


def _syntax_error(environment, spec: ImageSpec, error) -> UserError:
    """One line: the template file and line, as an editor jumps to them."""
    where = Path(environment.loader.searchpath[0]) / (error.name or spec.template)
    return UserError(f"{where}:{error.lineno}: template syntax error: {error.message}")


def checked_build_args(spec: ImageSpec) -> dict[str, str]:
    """The spec's build args, refused if one could inject a line or a command."""
    for name, value in spec.build_args.items():
        if not _ARG_NAME_RE.fullmatch(name):
            raise UserError(f"{spec.key}: build arg name {name!r} is not a valid ARG name")
        if not _PACKAGE_SPEC_RE.fullmatch(value):
            raise UserError(
                f"{spec.key}: build arg {name}={value!r} may only hold letters, digits, "
                "spaces and _.,:=<>!~[]/+@- (it reaches pip's command line)"
            )
    return dict(spec.build_args)


def quoted(value: object) -> str:
    """A Dockerfile double-quoted string; refuses what would end or escape it."""
    text = str(value)
    if not _DOUBLE_QUOTED_RE.fullmatch(text):
        raise UserError(
            f"{text!r} cannot go into a Dockerfile: no newline, control character, "
            "quote, backslash, $ or backtick is allowed"
        )
    return f'"{text}"'


def template_environment(templates_dir: Path):
    import jinja2

    class Loader(jinja2.FileSystemLoader):
        """jinja2's file loader, naming the template that is not UTF-8 text."""

        def get_source(self, environment, template):
            try:
                return super().get_source(environment, template)
            except UnicodeDecodeError as error:
                raise UserError(
                    f"{Path(self.searchpath[0]) / template}: not UTF-8 text "
                    f"({error.reason} at byte {error.start})"
                ) from None

    environment = jinja2.Environment(
        loader=Loader(templates_dir),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Dockerfiles, not HTML: values are checked by `quoted`
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["quoted"] = quoted
    return environment


def _context_files(templates_dir: Path) -> list[Path]:
    folder = templates_dir / CONTEXT_FILES
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.is_file())


def source_date_epoch_from(environ: Mapping[str, str]) -> int | None:
    """SOURCE_DATE_EPOCH (reproducible-builds.org) as an int, or None when unset."""
    text = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise UserError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class ImageSources:
    """Where an image's bytes come from: the package index its locks resolve
    against, a dist to install instead, the mirrors base images are pulled from."""

    index: Index
    base_mirrors: BaseMirrors = field(default_factory=BaseMirrors)
    dist: str | None = None
    re_resolve: bool = False
    wait_for_index: float = 0.0  # seconds to wait for a release the index lacks


def render_release(
    plan: Plan,
    loaded: LoadedConfig,
    out_dir: Path,
    sources: ImageSources,
    *,
    source_date_epoch: int | None = None,
    recorded: Mapping[str, datetime] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[RenderedContext]:
    """Lock every cell of the plan (see ``matrix.lock``), then render its contexts.
    Everything that can fail on the index or a dist fails here, before any build."""
    from matrix.lock import lock_plan

    check_renderable(plan, loaded, out_dir)
    locks = lock_plan(
        plan,
        loaded,
        sources.index,
        dist=sources.dist,
        recorded=recorded,
        re_resolve=sources.re_resolve,
        wait=sources.wait_for_index,
        progress=progress,
    )
    return render_plan(plan, loaded, out_dir, source_date_epoch=source_date_epoch, locks=locks)
