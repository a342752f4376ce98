"""Feature references (`"view:feature"`) parsed into per-view requests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from litemlops.errors import FeatureNotFoundError, ValidationError
from litemlops.store.features.definitions import ResolvedView

#: Per view: the view and its (feature, output column) pairs, in request order.
Requests = list[tuple[ResolvedView, list[tuple[str, str]]]]


def parse_refs(
    features: Sequence[str], full_feature_names: bool, view: Callable[[str], ResolvedView]
) -> Requests:
    """Group references by view; output names are `feature` or `view__feature`.

    view: looks a view up by name, raising when it is unknown.
    """
    if isinstance(features, str) or not features:
        raise ValidationError(
            f"features must be a non-empty list of 'view:feature' strings, got {features!r}"
        )
    grouped: dict[str, list[tuple[str, str]]] = {}
    outputs: dict[str, str] = {}
    for ref in features:
        if not isinstance(ref, str) or ref.count(":") != 1:
            raise ValidationError(f"feature reference {ref!r} is not 'view:feature'")
        view_name, feature = ref.split(":")
        resolved = view(view_name)
        if resolved.feature(feature) is None:
            raise FeatureNotFoundError(
                f"feature view {view_name!r} has no feature {feature!r} "
                f"(it has {list(resolved.feature_names)})"
            )
        out = f"{view_name}__{feature}" if full_feature_names else feature
        if out in outputs:
            if outputs[out] == ref:
                raise ValidationError(f"feature {ref!r} is requested twice")
            raise ValidationError(
                f"features {outputs[out]!r} and {ref!r} would both be named {out!r}; "
                "pass full_feature_names=True"
            )
        outputs[out] = ref
        grouped.setdefault(view_name, []).append((feature, out))
    return [(view(name), pairs) for name, pairs in grouped.items()]
