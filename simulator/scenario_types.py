"""The value types of scenario files: sizes and durations with units, flags, strict models.

Sizes and durations are read once when the file loads (`units.read_size`, `read_duration`);
the models keep the text as written, for dumps and messages.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from .units import UnitError, read_duration, read_size


def _check_size(v: Any) -> Any:
    try:
        return read_size(v)
    except UnitError as e:
        raise ValueError(str(e)) from None


def _check_size_or_max(v: Any) -> Any:
    if v == "max":
        return v
    return _check_size(v)


def _check_duration(v: Any) -> Any:
    try:
        return read_duration(v)
    except UnitError as e:
        raise ValueError(str(e)) from None


def _as_written(v: Any) -> Any:
    """Dumps give back the text as written (a plain str, not the parsed SizeText)."""
    return str(v) if isinstance(v, str) else v


_Written = PlainSerializer(_as_written)
Size = Annotated[Union[int, str], AfterValidator(_check_size), _Written]
SizeOrMax = Annotated[Union[int, str], AfterValidator(_check_size_or_max), _Written]
Duration = Annotated[Union[int, float, str], AfterValidator(_check_duration), _Written]
Range = Annotated[list[Size], Field(min_length=2, max_length=2)]
Flag = Annotated[bool, BeforeValidator(lambda v: bool(v) if v in (0, 1) else v)]


class Strict(BaseModel):
    """Unknown keys are errors: a typo must not pass silently."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
