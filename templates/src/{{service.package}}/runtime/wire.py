"""The rules of a request body that the server and the typed client share.

It imports pydantic alone, as every module ``client.py`` reaches does, so a
caller can use the client without the server's dependencies; ``inputs.py``
re-exports :class:`Inputs` for the server's own models.
"""

from pydantic import BaseModel, ConfigDict


class Inputs(BaseModel):
    """The base of every request model: a typed client and the server agree on a body.

    Unknown fields are refused rather than dropped (a misspelt optional input
    would otherwise run the program without it), values are not coerced
    (``"strict": 0`` is not a boolean), and ``NaN`` and infinities are no numbers
    (JSON has none; Python's parser reads them). DSPy's own types (``Image``, ``History``)
    build themselves from JSON, so their fields opt out of strict mode.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
