"""What matrix writes on an image, in one place.

Every full tag's index carries the release's version and commit, the image key,
and (when known) the build id and the inputs it was computed from, so verify and
publish judge an image from its manifest alone, without reading a blob. The build
id is also an image label, so `docker inspect` shows it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from matrix.buildid import BUILD_ID_LABEL, BuildInputs, build_annotations, build_id

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from matrix.engines.base import BuildRequest
    from matrix.plan import ImageSpec, Plan

VERSION_ANNOTATION = "org.opencontainers.image.version"
REVISION_ANNOTATION = "org.opencontainers.image.revision"
KEY_ANNOTATION = "io.prefect.matrix.key"


def annotations_for(
    plan: Plan, spec: ImageSpec, inputs: BuildInputs | Mapping[str, Any] | None = None
) -> dict[str, str]:
    """The annotations of ``spec``'s full tag: version, commit, image key and, when
    known, the build id and its inputs."""
    annotations = {VERSION_ANNOTATION: plan.version, KEY_ANNOTATION: spec.key}
    if plan.commit:
        annotations[REVISION_ANNOTATION] = plan.commit
    if inputs is not None:
        annotations |= build_annotations(inputs)
    return annotations


def with_build_id(
    plan: Plan, spec: ImageSpec, request: BuildRequest, inputs: BuildInputs | Mapping[str, Any]
) -> BuildRequest:
    """``request`` labelled with its build id and annotated as its full tag is."""
    return replace(
        request,
        labels={**request.labels, BUILD_ID_LABEL: build_id(inputs)},
        annotations={**request.annotations, **annotations_for(plan, spec, inputs)},
    )
