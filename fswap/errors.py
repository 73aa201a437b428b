"""The one error family fswap raises for things a user can fix.

Everything a caller might do wrong (a corrupt file, a photo with no face, a model folder
that is missing a file) raises a subclass of `FswapError` with a message that says what
happened and what to do. Internal invariants use `assert`.
"""


class FswapError(Exception):
    """Base class: a problem with the user's input or set-up, explained in the message."""


class ImageError(FswapError):
    """An input image cannot be read or is not acceptable (corrupt, too large, wrong type)."""


class NoFaceError(FswapError):
    """No face (or not the requested face) was found in an image."""


class ModelNotFoundError(FswapError):
    """A model file or checkpoint could not be found where fswap looked."""


class CheckpointError(FswapError):
    """A checkpoint exists but does not match what the code expects (keys, shapes, components)."""


class OutputError(FswapError):
    """An output cannot be written where asked (a format fswap cannot encode, an input it would
    overwrite, a folder it may not write in, a full disk)."""
