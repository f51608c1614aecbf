"""The base of every response model: outputs read from a DSPy Prediction."""

from typing import Self

import dspy
from pydantic import BaseModel

from .text import clean_value


class Outputs(BaseModel):
    """A program's outputs; the fields are declared by each generated subclass."""

    @classmethod
    def from_prediction(cls, prediction: dspy.Prediction) -> Self:
        """Validate the Prediction's values for this model's fields (text made encodable)."""
        return cls.model_validate(
            {name: clean_value(prediction.get(name)) for name in cls.model_fields}
        )
