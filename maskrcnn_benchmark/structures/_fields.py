"""Named per-instance data attached to a structure (BoxList fields, Keypoints fields)."""

from typing import Any, Dict, List


class FieldsMixin:
    """add_field / get_field / has_field / fields over a dict `self.extra_fields`."""

    extra_fields: Dict[str, Any]

    def add_field(self, field: str, field_data: Any) -> None:
        """Attach per-instance data under `field` (replaces an existing one)."""
        self.extra_fields[field] = field_data

    def get_field(self, field: str) -> Any:
        """The data of `field` (KeyError if absent)."""
        return self.extra_fields[field]

    def has_field(self, field: str) -> bool:
        return field in self.extra_fields

    def fields(self) -> List[str]:
        return list(self.extra_fields.keys())
