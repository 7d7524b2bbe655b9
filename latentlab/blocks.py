"""What every params block is made of: the strict base class and the value types the stage
blocks (`latentlab.params`) and the generator families' blocks (`latentlab.families`) share."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

PositiveInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]


class Block(BaseModel):
    """A params block: unknown keys and loose types are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Rate = Annotated[float, Field(gt=0.0, le=1.0)]
Epochs = Annotated[int, Field(ge=1, le=10_000)]
# A training budget in images seen (epochs are derived: `latentlab.training.budget`), and the
# least images one epoch holds (a smaller split is repeated within an epoch).
ImagesSeen = Annotated[int, Field(ge=1, le=10_000_000_000)]
MinEpochImages = Annotated[int, Field(ge=1, le=10_000_000)]
BatchSize = Annotated[int, Field(ge=1, le=65_536)]
Optimizer = Literal["adam", "nadam"]  # Nadam: Adam with Nesterov momentum (Géron's notebook)
Units = Annotated[int, Field(ge=1, le=65_536)]
# Widths of strided conv layers, or "auto": scaled to the image size when the model is built.
ConvWidths = Union[Literal["auto"], Annotated[list[Units], Field(min_length=1)]]
LearningRate = Annotated[float, Field(gt=0.0, le=10.0)]
