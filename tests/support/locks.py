"""Small fixed locks for tests that render the packaged templates without an index."""

from __future__ import annotations

from datetime import UTC, datetime

from matrix.lock import ImageLock
from matrix.plan import Plan

AS_OF = datetime(2023, 8, 24, 20, 2, 9, tzinfo=UTC)


def fixed_locks(plan: Plan) -> dict[str, ImageLock]:
    """One lock per cell naming only the planned package, as lock_plan would shape it."""
    return {
        spec.key: ImageLock(
            AS_OF, {p: f"# {spec.key} {p}\nprefect=={plan.version}\n" for p in spec.platforms}
        )
        for spec in plan.images
    }
