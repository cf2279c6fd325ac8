"""Errors raised by the models package. Messages name the bad value and the fix."""


class ModelsError(Exception):
    """Base class of every error raised by `models`."""


class CatalogError(ModelsError):
    """A catalogue file is missing, unreadable, or has no usable row."""


class ArtifactError(ModelsError):
    """A model artifact is missing, incomplete or damaged."""


class ConfigError(ModelsError):
    """A model configuration names an unknown component or an invalid value."""


class ImageDecodeError(ModelsError):
    """Bytes or a file could not be decoded as an image."""
