"""A checkpoint's metadata checked against the params schema, so a checkpoint that params.yaml
could never have produced (``input.size`` 100, a codec input size that differs from
``input.size``, a kind its architecture lacks) is refused when it is loaded, naming the file."""
from __future__ import annotations

from pydantic import ConfigDict, ValidationError, model_validator

from fhbiometry.config.fields import Bool, InputSize, NonNegative, PositiveWhole, Section, choice
from fhbiometry.config.messages import error_lines, problems
from fhbiometry.config.sections_model import Codec, Input, overrides
from fhbiometry.core.choices import ARCHS, KINDS



class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or not one of ours; the message names the fix.
    (Here, torch-free, so that the command line can catch it without importing torch.)"""


CodecSettings = overrides(Codec, "CodecSettings", {"kind": (choice(KINDS), ...),
                                                   "input_size": (InputSize, ...),
                                                   # the contour codec's band weight (models.<name>.contour_weight)
                                                   "contour_weight": (NonNegative | None, None)})


class CheckpointMeta(Section):
    """The keys of a checkpoint's metadata that rebuild its model (the rest are records)."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)
    arch: choice(ARCHS)
    kind: choice(KINDS)
    input: Input
    codec: CodecSettings
    head_channels: PositiveWhole | None = None
    head_skips: Bool | None = None

    @model_validator(mode="after")
    def _consistent(self):
        found = []
        if self.codec.kind != self.kind:
            found.append(("codec.kind", self.codec.kind, f"must be the checkpoint's kind ({self.kind!r})"))
        if self.codec.input_size != self.input.size:
            found.append(("codec.input_size", self.codec.input_size, f"must equal input.size ({self.input.size})"))
        if self.codec.stride and self.input.size % self.codec.stride:
            found.append(("input.size", self.input.size, f"must be a multiple of codec.stride ({self.codec.stride})"))
        if self.kind not in ARCHS.meta(self.arch).get("kinds", ()):
            found.append(("arch", self.arch, f"with kind {self.kind} choose one of "
                                             f"{list(ARCHS.names(kinds=self.kind))}"))
        if found:
            raise problems(*found)
        return self


def checkpoint_meta_lines(meta: dict, source: str) -> list[str]:
    """One line per problem of ``meta`` (a checkpoint's metadata), each starting with ``source``."""
    try:
        CheckpointMeta.model_validate(meta)
    except ValidationError as exc:
        return list(dict.fromkeys(text for err in exc.errors()
                                  for text in error_lines(CheckpointMeta, err, meta, source)))
    return []
